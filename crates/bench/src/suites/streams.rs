//! Many slow streams at once, each a chat turn. Speed: answers of 200 tokens 20 ms apart (4 s), all
//! started within one second. Memory: long answers (a token every 1.5 s) started at a rate the service
//! can start turns, so that every stream of a level is open at once. Errors, the service's memory per
//! open stream, and each process's CPU per stream.

use std::time::Duration;

use serde::Serialize;
use serde_json::json;

use crate::env::{Mock, Service, Tenant};
use crate::load::{self, Arrivals, StreamKind, Summary};
use crate::procstat::{self, CpuMark};

#[derive(Debug, Clone, Serialize)]
pub struct Level {
    pub streams: usize,
    pub summary: Summary,
    pub rss_before_mib: f64,
    pub rss_peak_mib: f64,
    pub kib_per_stream: f64,
    /// CPU milliseconds per stream of each process: where the time goes on a machine they share.
    pub service_cpu_ms: f64,
    pub database_cpu_ms: f64,
    pub mock_cpu_ms: f64,
    pub generator_cpu_ms: f64,
}

/// Turns started per second in the memory levels: about what the service starts on two cores, so that
/// the streams queue in no client and each level's are all open together.
pub const MEMORY_STARTS_PER_SECOND: f64 = 150.0;

/// Runs each level in turn, stopping after the first with errors: the most it holds is the last clean one.
/// `starts_per_second`: `None` starts each level's streams within one second.
pub async fn run(
    client: &reqwest::Client,
    service: &Service,
    tenant: &Tenant,
    mock: &Mock,
    postmaster: u32,
    levels: &[usize],
    starts_per_second: Option<f64>,
) -> anyhow::Result<Vec<Level>> {
    let mut results = Vec::new();
    for &streams in levels {
        let rate = starts_per_second.unwrap_or(streams as f64);
        let sessions = tenant.new_sessions(client, service, streams).await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let pid = service.pid();
        let rss_before_mib = procstat::rss_mib(pid);
        let mark = CpuMark::now(pid, postmaster);
        let (mock_before, generator_before) =
            (procstat::cpu_seconds(mock.pid()), procstat::cpu_seconds(std::process::id()));
        let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
        let sampler = tokio::spawn(async move {
            let mut peak: f64 = 0.0;
            loop {
                peak = peak.max(procstat::rss_mib(pid));
                tokio::select! {
                    _ = stop_rx.changed() => return peak,
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        });
        let summary = load::open_loop(Arrivals { rate, count: streams }, |i, intended| {
            let request = client
                .post(format!("{}/api/v1/sessions/{}/messages", service.base, sessions[i]))
                .bearer_auth(&tenant.key)
                .header("accept", "text/event-stream")
                .json(&json!({ "content": "Tell me a long story about streams." }));
            load::send(request, intended, Some(StreamKind::Switchboard))
        })
        .await;
        let (service_cpu_ms, database_cpu_ms) = mark.per_unit_since(pid, postmaster, streams);
        let per_stream = |before: f64, now: f64| (now - before) * 1000.0 / streams as f64;
        let mock_cpu_ms = per_stream(mock_before, procstat::cpu_seconds(mock.pid()));
        let generator_cpu_ms = per_stream(generator_before, procstat::cpu_seconds(std::process::id()));
        let _ = stop_tx.send(true);
        let rss_peak_mib = sampler.await.unwrap_or_default();
        let kib_per_stream = (rss_peak_mib - rss_before_mib).max(0.0) * 1024.0 / streams as f64;
        eprintln!(
            "  {streams} streams: errors {}, total p50 {:.0} ms p99 {:.0} ms, RSS {rss_before_mib:.0} → {rss_peak_mib:.0} MiB ({kib_per_stream:.1} KiB per stream), CPU ms per stream: service {service_cpu_ms:.1}, database {database_cpu_ms:.1}, mock {mock_cpu_ms:.1}, generator {generator_cpu_ms:.1}",
            summary.errors,
            summary.total_ms.map_or(f64::NAN, |p| p.p50),
            summary.total_ms.map_or(f64::NAN, |p| p.p99),
        );
        let failed = summary.errors > 0;
        results.push(Level {
            streams,
            summary,
            rss_before_mib,
            rss_peak_mib,
            kib_per_stream,
            service_cpu_ms,
            database_cpu_ms,
            mock_cpu_ms,
            generator_cpu_ms,
        });
        if failed {
            break;
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    Ok(results)
}
