//! Many slow streams at once: each a chat turn whose answer streams 200 tokens 20 ms apart (4 s), all
//! started within one second. Errors, and the service's memory per open stream.

use std::time::Duration;

use serde::Serialize;
use serde_json::json;

use crate::env::{Service, Tenant};
use crate::load::{self, Arrivals, StreamKind, Summary};
use crate::procstat;

#[derive(Debug, Clone, Serialize)]
pub struct Level {
    pub streams: usize,
    pub summary: Summary,
    pub rss_before_mib: f64,
    pub rss_peak_mib: f64,
    pub kib_per_stream: f64,
}

/// Runs each level in turn, stopping after the first with errors: the most it holds is the last clean one.
pub async fn run(
    client: &reqwest::Client,
    service: &Service,
    tenant: &Tenant,
    levels: &[usize],
) -> anyhow::Result<Vec<Level>> {
    let mut results = Vec::new();
    for &streams in levels {
        let sessions = tenant.new_sessions(client, service, streams).await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let pid = service.pid();
        let rss_before_mib = procstat::rss_mib(pid);
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
        let summary = load::open_loop(Arrivals { rate: streams as f64, count: streams }, |i, intended| {
            let request = client
                .post(format!("{}/api/v1/sessions/{}/messages", service.base, sessions[i]))
                .bearer_auth(&tenant.key)
                .header("accept", "text/event-stream")
                .json(&json!({ "content": "Tell me a long story about streams." }));
            load::send(request, intended, Some(StreamKind::Switchboard))
        })
        .await;
        let _ = stop_tx.send(true);
        let rss_peak_mib = sampler.await.unwrap_or_default();
        let kib_per_stream = (rss_peak_mib - rss_before_mib).max(0.0) * 1024.0 / streams as f64;
        eprintln!(
            "  {streams} streams: errors {}, total p50 {:.0} ms p99 {:.0} ms, RSS {rss_before_mib:.0} → {rss_peak_mib:.0} MiB ({kib_per_stream:.1} KiB per stream)",
            summary.errors,
            summary.total_ms.map_or(f64::NAN, |p| p.p50),
            summary.total_ms.map_or(f64::NAN, |p| p.p99),
        );
        let failed = summary.errors > 0;
        results.push(Level { streams, summary, rss_before_mib, rss_peak_mib, kib_per_stream });
        if failed {
            break;
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    Ok(results)
}
