//! A chat turn with everything on: `POST /sessions/{id}/messages` streamed, with the question embedded,
//! hybrid search over the tenant's corpus, the prompt built, the model streamed and everything recorded.
//! Added time to first token at 1, 50 and 200 concurrent; turns per second at saturation; CPU per turn.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::Serialize;
use serde_json::json;

use crate::corpus;
use crate::env::{Mock, Service, Tenant};
use crate::load::{self, Arrivals, Percentiles, StreamKind, Summary};
use crate::procstat::CpuMark;

#[derive(Debug, Clone, Serialize)]
pub struct Level {
    pub concurrency: usize,
    pub summary: Summary,
    /// First-token percentiles minus the mock's own (its first chunk's delay).
    pub added_first_token_ms: Option<Percentiles>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Turns {
    pub corpus_chunks: i64,
    pub mock_first_token_ms: Option<Percentiles>,
    pub levels: Vec<Level>,
    pub saturation: Summary,
    pub saturation_workers: usize,
    pub service_cpu_ms_per_turn: f64,
    pub database_cpu_ms_per_turn: f64,
}

pub struct Plan {
    pub sequential: usize,
    pub levels: Vec<usize>,
    pub seconds: f64,
    pub saturation_workers: usize,
    pub saturation: Duration,
}

/// How long the turn mock's answer streams (tokens × delay), to aim the arrival rate at a concurrency.
pub const TURN_ANSWER: Duration = Duration::from_millis(1000);

/// Fresh conversations, handed out one per turn so no turn carries another's history.
struct Sessions {
    ids: Vec<String>,
    next: AtomicUsize,
}

impl Sessions {
    async fn create(
        client: &reqwest::Client,
        service: &Service,
        tenant: &Tenant,
        count: usize,
    ) -> anyhow::Result<Arc<Self>> {
        let ids = tenant.new_sessions(client, service, count).await?;
        Ok(Arc::new(Self { ids, next: AtomicUsize::new(0) }))
    }

    fn take(&self) -> &str {
        &self.ids[self.next.fetch_add(1, Ordering::Relaxed) % self.ids.len()]
    }
}

pub async fn run(
    client: &reqwest::Client,
    service: &Service,
    tenant: &Tenant,
    turn_mock: &Mock,
    fast_mock: &Mock,
    corpus_chunks: i64,
    seed: u64,
    plan: &Plan,
    postmaster: u32,
) -> anyhow::Result<Turns> {
    tenant.use_chat_mock(client, service, turn_mock).await?;
    // The mock's own first token, the floor Switchboard's is measured against.
    let direct = load::sequential(plan.sequential.min(50), |_, intended| {
        let body = json!({ "model": "bench-model", "stream": true, "messages": [{ "role": "user", "content": "hi" }] });
        let request = client.post(format!("{}/chat/completions", turn_mock.openai_base())).bearer_auth("k").json(&body);
        load::send(request, intended, Some(StreamKind::OpenAi))
    })
    .await;
    let mock_first_token_ms = direct.first_token_ms;

    let needed =
        plan.sequential + plan.levels.iter().map(|level| (*level as f64 * plan.seconds) as usize + 1).sum::<usize>();
    let sessions = Sessions::create(client, service, tenant, needed).await?;
    let turn = |i: usize, intended| {
        let url = format!("{}/api/v1/sessions/{}/messages", service.base, sessions.take());
        let request = client
            .post(url)
            .bearer_auth(&tenant.key)
            .header("accept", "text/event-stream")
            .json(&json!({ "content": corpus::question(seed, i) }));
        load::send(request, intended, Some(StreamKind::Switchboard))
    };
    let mut levels = Vec::new();
    let added =
        |summary: &Summary| summary.first_token_ms.zip(mock_first_token_ms).map(|(ours, mock)| ours.minus(mock));
    let summary = load::sequential(plan.sequential, turn).await;
    report(1, &summary);
    levels.push(Level { concurrency: 1, added_first_token_ms: added(&summary), summary });
    for &level in &plan.levels {
        let rate = level as f64 / TURN_ANSWER.as_secs_f64();
        let summary = load::open_loop(Arrivals { rate, count: (rate * plan.seconds) as usize }, turn).await;
        report(level, &summary);
        levels.push(Level { concurrency: level, added_first_token_ms: added(&summary), summary });
        tokio::time::sleep(Duration::from_secs(2)).await;
    }

    // Saturation: answers that cost the mock nothing, as many workers as keep the service busy.
    tenant.use_chat_mock(client, service, fast_mock).await?;
    let sessions = Sessions::create(client, service, tenant, 2_000).await?;
    let base = service.base.clone();
    let key = tenant.key.clone();
    let client = client.clone();
    let mark = CpuMark::now(service.pid(), postmaster);
    let saturation = load::saturate(plan.saturation_workers, plan.saturation, move |i, intended| {
        let request = client
            .post(format!("{base}/api/v1/sessions/{}/messages", sessions.take()))
            .bearer_auth(&key)
            .header("accept", "text/event-stream")
            .json(&json!({ "content": corpus::question(seed, i) }));
        load::send(request, intended, Some(StreamKind::Switchboard))
    })
    .await;
    let completed = saturation.requests - saturation.errors;
    let (service_cpu, database_cpu) = mark.per_unit_since(service.pid(), postmaster, completed);
    eprintln!(
        "  turns at saturation: {:.1}/s, CPU per turn: service {service_cpu:.2} ms, database {database_cpu:.2} ms",
        saturation.throughput
    );
    Ok(Turns {
        corpus_chunks,
        mock_first_token_ms,
        levels,
        saturation,
        saturation_workers: plan.saturation_workers,
        service_cpu_ms_per_turn: service_cpu,
        database_cpu_ms_per_turn: database_cpu,
    })
}

fn report(concurrency: usize, summary: &Summary) {
    eprintln!(
        "  turn c={concurrency:<4} first token p50 {:>8.2} ms p99 {:>8.2} ms, errors {}",
        summary.first_token_ms.map_or(f64::NAN, |p| p.p50),
        summary.first_token_ms.map_or(f64::NAN, |p| p.p99),
        summary.errors
    );
}
