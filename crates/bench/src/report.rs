//! The results of a run: one JSON document, and markdown tables of what matters in it.

use std::fmt::Write as _;

use serde::Serialize;

use crate::load::{Percentiles, Summary};
use crate::suites::{checks, ingestion, passthrough, retrieval, streams, traces, turns, vectors};

#[derive(Debug, Serialize, Default)]
pub struct Results {
    pub started_at: String,
    pub commit: String,
    pub cpu: String,
    pub cores: usize,
    pub quick: bool,
    pub pinned: bool,
    pub ingestion: Option<Ingestion>,
    pub retrieval: Vec<retrieval::TenantRetrieval>,
    pub turns: Option<turns::Turns>,
    pub passthrough: Vec<passthrough::Run>,
    pub checks: Option<checks::Checks>,
    pub traces: Option<traces::Traces>,
    /// Why the peer was not measured, when it was not.
    pub peer_missing: Option<String>,
    pub streams: Vec<streams::Level>,
    pub memory: Vec<streams::Level>,
    pub vectors: Vec<vectors::IndexRun>,
    pub notes: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Ingestion {
    pub large: ingestion::Ingested,
    /// Many documents at once into an empty tenant, after `large`.
    pub bulk: ingestion::Ingested,
    pub tiny: Vec<ingestion::Ingested>,
    pub large_document: ingestion::LargeDocument,
    pub local_embedding: Option<ingestion::LocalEmbedding>,
}

fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |value| format!("{value:.2}"))
}

fn p(percentiles: Option<Percentiles>, pick: fn(&Percentiles) -> f64) -> String {
    ms(percentiles.as_ref().map(pick))
}

fn summary_cells(summary: &Summary) -> String {
    format!(
        "{} | {} | {} | {} | {} | {} | {}/{} | {:.1}",
        p(summary.first_token_ms, |p| p.p50),
        p(summary.first_token_ms, |p| p.p99),
        p(summary.total_ms, |p| p.p50),
        p(summary.total_ms, |p| p.p90),
        p(summary.total_ms, |p| p.p99),
        p(summary.total_ms, |p| p.max),
        summary.errors,
        summary.requests,
        summary.throughput,
    )
}

const SUMMARY_HEADER: &str = "TTFT p50 | TTFT p99 | total p50 | total p90 | total p99 | total max | errors | done/s";

impl Results {
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# Switchboard benchmarks\n\n{} · commit {} · {} ({} cores){}{}\n\nTimes in milliseconds, from each request's intended start (open loop).\n",
            self.started_at,
            self.commit,
            self.cpu,
            self.cores,
            if self.pinned { " · pinned: service + PostgreSQL on core 1, load + mocks on core 0" } else { "" },
            if self.quick { " · QUICK (smoke-test sizes)" } else { "" },
        );
        self.passthrough_tables(&mut out);
        self.checks_tables(&mut out);
        self.turn_tables(&mut out);
        self.traces_tables(&mut out);
        stream_table(
            &mut out,
            "## 3. Concurrent slow streams (200 tokens, 20 ms apart; all started within 1 s)",
            &self.streams,
        );
        stream_table(
            &mut out,
            &format!(
                "## 3b. Many open streams (60 tokens, 1.5 s apart; {} started per second, so each level's are open together)",
                crate::suites::streams::MEMORY_STARTS_PER_SECOND
            ),
            &self.memory,
        );
        self.retrieval_table(&mut out);
        self.ingestion_table(&mut out);
        self.vectors_table(&mut out);
        for note in &self.notes {
            let _ = writeln!(out, "- {note}");
        }
        out
    }

    fn passthrough_tables(&self, out: &mut String) {
        if self.passthrough.is_empty() {
            return;
        }
        let _ = writeln!(out, "## 1 & 6. Pass-through: direct to the mock, Switchboard, LiteLLM, on each route\n");
        let mut routes: Vec<passthrough::Wire> = Vec::new();
        for run in &self.passthrough {
            if !routes.contains(&run.route) {
                routes.push(run.route);
            }
        }
        for &route in &routes {
            let floor = match route {
                passthrough::Wire::ChatCompletions => "direct: the mock's chat completion",
                passthrough::Wire::Messages => {
                    "direct: the mock's Anthropic message, which Switchboard (the tenant's Anthropic key) and LiteLLM (an `anthropic/` model) both send it"
                }
                passthrough::Wire::Responses => {
                    "direct: the mock's chat completion (it serves no Responses API), which Switchboard (the tenant's OpenAI key) and LiteLLM (`use_chat_completions_api`) both send it for a response"
                }
            };
            let _ = writeln!(
                out,
                "### `{}` ({floor})\n\n| stream | concurrency | target | {SUMMARY_HEADER} |\n|---|---|---|---|---|---|---|---|---|---|---|",
                route.path()
            );
            for run in self.passthrough.iter().filter(|run| run.route == route) {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} |",
                    run.stream,
                    run.concurrency,
                    run.target,
                    summary_cells(&run.summary)
                );
            }
            out.push('\n');
        }
        let _ = writeln!(
            out,
            "Added over the mock on the same route (percentile minus percentile; TTFT for streams, total otherwise), and the peer's added time as a multiple of Switchboard's:\n\n| route | stream | concurrency | Switchboard p50 | Switchboard p99 | LiteLLM p50 | LiteLLM p99 | LiteLLM ÷ Switchboard (p50) |\n|---|---|---|---|---|---|---|---|"
        );
        for direct in self.passthrough.iter().filter(|run| run.target == "direct") {
            let find = |name: &str| {
                self.passthrough.iter().find(|run| {
                    run.route == direct.route
                        && run.target == name
                        && run.stream == direct.stream
                        && run.concurrency == direct.concurrency
                })
            };
            let pick = |summary: &Summary| if direct.stream { summary.first_token_ms } else { summary.total_ms };
            let added = |name: &str| {
                find(name).and_then(|run| pick(&run.summary)).zip(pick(&direct.summary)).map(|(a, b)| a.minus(b))
            };
            let (ours, peer) = (added("switchboard"), added("litellm"));
            // A ratio to an added time under a millisecond (or negative) would say more about noise than speed.
            let ratio = ours
                .zip(peer)
                .filter(|(ours, _)| ours.p50 >= 1.0)
                .map(|(ours, peer)| format!("{:.1}×", peer.p50 / ours.p50));
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {} | {} | {} | {} |",
                direct.route.path(),
                direct.stream,
                direct.concurrency,
                p(ours, |p| p.p50),
                p(ours, |p| p.p99),
                p(peer, |p| p.p50),
                p(peer, |p| p.p99),
                ratio.unwrap_or_else(|| "–".to_owned())
            );
        }
        let failing: Vec<String> = self
            .passthrough
            .iter()
            .filter_map(|run| {
                let example = run.summary.error_examples.first()?;
                Some(format!(
                    "{} {} stream={} c={}: {example}",
                    run.route.path(),
                    run.target,
                    run.stream,
                    run.concurrency
                ))
            })
            .collect();
        if !failing.is_empty() {
            let _ = writeln!(out, "\nErrors:\n");
            for line in failing {
                let _ = writeln!(out, "- {line}");
            }
        }
        if let Some(reason) = &self.peer_missing {
            let _ = writeln!(out, "\nLiteLLM was not measured: {reason}");
        }
        out.push('\n');
    }

    fn checks_tables(&self, out: &mut String) {
        let Some(checks) = &self.checks else { return };
        let _ = writeln!(
            out,
            "## 7. Budget and rate-limit checks: none set, and all set (the tenant's and the key's own budget, the tenant's and the key's rate limits), never refusing\n\nEnd to end, non-streamed `/v1/chat/completions` to the fast mock, one at a time, the two tenants in turn:\n\n| checks | total p50 | total p90 | total p99 | total max | errors |\n|---|---|---|---|---|---|"
        );
        for side in &checks.end_to_end {
            let total = side.summary.total_ms;
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {}/{} |",
                side.checks,
                p(total, |p| p.p50),
                p(total, |p| p.p90),
                p(total, |p| p.p99),
                p(total, |p| p.max),
                side.summary.errors,
                side.summary.requests
            );
        }
        let added = checks.added_end_to_end_ms;
        let _ = writeln!(
            out,
            "| **added** | **{}** | {} | **{}** | – | |\n\nThe checks alone (the library's calls, as a turn makes them, on the database as the application role), to the microsecond:\n\n| checks | rounds | admission p50 / p99 | budgets at start p50 / p99 | reservation p50 / p99 | settlement p50 / p99 | token settlement (off the path) p50 / p99 | all, one after the other p50 / p99 | reservation beside the start p50 / p99 |\n|---|---|---|---|---|---|---|---|---|",
            p(added, |p| p.p50),
            p(added, |p| p.p90),
            p(added, |p| p.p99),
        );
        let us = |percentiles: Option<Percentiles>, pick: fn(&Percentiles) -> f64| {
            percentiles.as_ref().map_or_else(|| "–".to_owned(), |value| format!("{:.3}", pick(value)))
        };
        let both = |percentiles: Option<Percentiles>| {
            format!("{} / {}", us(percentiles, |p| p.p50), us(percentiles, |p| p.p99))
        };
        for direct in &checks.direct {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                direct.checks,
                direct.rounds,
                both(direct.admission_ms),
                both(direct.budgets_at_start_ms),
                both(direct.reservation_ms),
                both(direct.settlement_ms),
                both(direct.token_settlement_ms),
                both(direct.all_ms),
                both(direct.beside_ms),
            );
        }
        let _ = writeln!(
            out,
            "| **added** | | | | | | | **{}** / {} | **{}** / {} |\n",
            us(checks.added_direct_ms, |p| p.p50),
            us(checks.added_direct_ms, |p| p.p99),
            us(checks.added_beside_ms, |p| p.p50),
            us(checks.added_beside_ms, |p| p.p99),
        );
    }

    fn turn_tables(&self, out: &mut String) {
        let Some(turns) = &self.turns else { return };
        let _ = writeln!(
            out,
            "## 2. Chat turn with everything on (retrieval over {} chunks, persistence, SSE)\n\nThe mock's own first token: p50 {} ms, p99 {} ms.\n\n| concurrency | added TTFT p50 | added TTFT p99 | {SUMMARY_HEADER} |\n|---|---|---|---|---|---|---|---|---|---|---|",
            turns.corpus_chunks,
            p(turns.mock_first_token_ms, |p| p.p50),
            p(turns.mock_first_token_ms, |p| p.p99),
        );
        for level in &turns.levels {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                level.concurrency,
                p(level.added_first_token_ms, |p| p.p50),
                p(level.added_first_token_ms, |p| p.p99),
                summary_cells(&level.summary)
            );
        }
        let _ = writeln!(
            out,
            "\nAt saturation ({} closed-loop workers, instant answers): **{:.1} turns/s**, {} errors; CPU per turn: service {:.2} ms, PostgreSQL {:.2} ms.\n",
            turns.saturation_workers,
            turns.saturation.throughput,
            turns.saturation.errors,
            turns.service_cpu_ms_per_turn,
            turns.database_cpu_ms_per_turn
        );
    }

    fn traces_tables(&self, out: &mut String) {
        let Some(traces) = &self.traces else { return };
        let _ = writeln!(
            out,
            "## 2b. What tracing and metrics cost a chat turn (issue 17: at most 0.1 ms added TTFT p50, at most 3 % of saturated turns/s)\n\nA/B in one run: a second `switchboard serve` on the same database exports its spans over OTLP/HTTP (batched) to a local sink; the main service exports none. {} chat turns on each, one in flight at a time, alternating between the two (pair *i* asks both the same question; which goes first alternates), a fresh conversation each, the turn mock, over {} chunks.\n\n| service | TTFT p50 | TTFT p90 | TTFT p99 | TTFT max | errors |\n|---|---|---|---|---|---|",
            traces.pairs, traces.corpus_chunks,
        );
        for (name, summary) in [("untraced", &traces.untraced), ("traced", &traces.traced)] {
            let first_token = summary.first_token_ms;
            let _ = writeln!(
                out,
                "| {name} | {} | {} | {} | {} | {}/{} |",
                p(first_token, |p| p.p50),
                p(first_token, |p| p.p90),
                p(first_token, |p| p.p99),
                p(first_token, |p| p.max),
                summary.errors,
                summary.requests
            );
        }
        let added = traces.added_first_token_ms;
        let _ = writeln!(
            out,
            "| **traced − untraced** | **{}** | {} | {} | {} | |\n\nFrom the pairs' own differences (traced minus untraced, the same question one after the other; the median of the pairs where the untraced went first and of those where the traced did, averaged, since the second of a pair is faster whichever it is): tracing adds **{} ms** to the first token; the second turn of a pair is faster than the first by {} ms (negative: slower).\n",
            p(added, |p| p.p50),
            p(added, |p| p.p90),
            p(added, |p| p.p99),
            p(added, |p| p.max),
            ms(traces.paired.map(|paired| paired.added_ms)),
            ms(traces.paired.map(|paired| paired.second_faster_ms)),
        );
        let _ = writeln!(
            out,
            "At saturation ({} closed-loop workers, instant answers, the same number of turns per leg, in blocks of four legs: untraced, traced, traced, untraced):\n\n| block | service | turns | errors | turns/s | service CPU ms/turn | PostgreSQL CPU ms/turn |\n|---|---|---|---|---|---|---|",
            traces.saturation_workers
        );
        for leg in &traces.saturation {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {:.1} | {:.2} | {:.2} |",
                leg.block + 1,
                if leg.traced { "traced" } else { "untraced" },
                leg.summary.requests,
                leg.summary.errors,
                leg.summary.throughput,
                leg.service_cpu_ms_per_turn,
                leg.database_cpu_ms_per_turn
            );
        }
        let metrics = &traces.metrics;
        let _ = writeln!(
            out,
            "\nUntraced **{:.1} turns/s**, traced **{:.1} turns/s** over all their legs; traced against untraced, block by block, averaged: **{:+.1} %**. Spans exported per traced turn: {:.1} one at a time, {:.1} at saturation; {}.\n\nMetrics are always on, so they are not A/B'd: the library's recording calls a completed streamed turn makes (the HTTP answer's count and duration, the open stream's gauge up and down, the query embedding's and the search's durations, the usage's token histograms and cost, the run's count, time to first token, duration and own time, dropped citation markers) and, per transaction begun, the pool wait's gauge and histogram ({:.1} per turn, read from the untraced service's `/metrics` over its turns above) were timed through `switchboard::metrics` in a loop of {} rounds in the bench process (one thread, no contention): **{:.2} µs per turn** ({:.2} µs once per turn + {:.1} × {:.3} µs per pool wait), plus {:.2} µs per turn deferred to the scrape (histogram samples are bucketed when `/metrics` is rendered).\n",
            traces.untraced_turns_per_s,
            traces.traced_turns_per_s,
            traces.throughput_change * 100.0,
            traces.spans_per_turn_one_at_a_time,
            traces.spans_per_turn_saturated,
            traces.sink,
            metrics.pool_waits_per_turn,
            metrics.rounds,
            metrics.per_turn_us,
            metrics.once_per_turn_us,
            metrics.pool_waits_per_turn,
            metrics.pool_wait_us,
            metrics.deferred_to_scrape_us,
        );
    }

    fn vectors_table(&self, out: &mut String) {
        let Some(first) = self.vectors.first() else { return };
        let _ = writeln!(
            out,
            "## 4b. Vector indexes ({} vectors × 384, the corpus's; HNSW, cosine; {} found, ordered by exact distance, recall of the first 10; the service's index is halfvec, m {}, ef_construction {}, searched at ef_search {})\n\n| stored in the index | m | ef_construction | build s | index MiB | ef_search | recall@10 | p50 | p99 | searches/s (2 at once) |\n|---|---|---|---|---|---|---|---|---|---|",
            first.vectors,
            switchboard::retrieval::FUSION_DEPTH,
            switchboard::retrieval::vectors::HNSW_M,
            switchboard::retrieval::vectors::HNSW_EF_CONSTRUCTION,
            switchboard::retrieval::vectors::ef_search(switchboard::retrieval::FUSION_DEPTH),
        );
        for run in &self.vectors {
            for searches in &run.searches {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {:.1} | {:.1} | {} | {:.3} | {:.2} | {:.2} | {:.0} |",
                    if run.index.half { "halfvec" } else { "vector" },
                    run.index.m,
                    run.index.ef_construction,
                    run.build_s,
                    run.index_mib,
                    searches.ef_search,
                    searches.recall_at_10,
                    searches.latency.p50,
                    searches.latency.p99,
                    searches.per_second,
                );
            }
        }
        out.push('\n');
    }

    fn retrieval_table(&self, out: &mut String) {
        if self.retrieval.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "## 4. Retrieval (k = 10)\n\n| tenant | its chunks | hybrid search p50 | p99 | vector search p50 | p99 | recall@10 vs exact | the same, ties with the tenth counted | queries |\n|---|---|---|---|---|---|---|---|---|"
        );
        for tenant in &self.retrieval {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {:.2} | {:.2} | {:.3} | {:.3} | {} |",
                tenant.tenant,
                tenant.chunks,
                p(tenant.hybrid_search.total_ms, |p| p.p50),
                p(tenant.hybrid_search.total_ms, |p| p.p99),
                tenant.vector_search_p50_ms,
                tenant.vector_search_p99_ms,
                tenant.recall_at_10,
                tenant.recall_at_10_ties,
                tenant.queries
            );
        }
        let _ = writeln!(
            out,
            "\nFull-text search alone (`search::full_text`, exact BM25, in the database as the tenant):\n\n| tenant | questions | results asked | p50 | p99 | queries |\n|---|---|---|---|---|---|"
        );
        for tenant in &self.retrieval {
            for search in &tenant.full_text {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {:.2} | {:.2} | {} |",
                    tenant.tenant, search.questions, search.depth, search.p50_ms, search.p99_ms, search.queries
                );
            }
        }
        out.push('\n');
    }

    fn ingestion_table(&self, out: &mut String) {
        let Some(ingestion) = &self.ingestion else { return };
        let _ = writeln!(
            out,
            "## 5. Ingestion (`POST /api/v1/documents`: chunk, count tokens, embed with the mock, store)\n\n| tenant | documents | chunks | seconds | documents/s | chunks/s | concurrency |\n|---|---|---|---|---|---|---|"
        );
        for ingested in [&ingestion.large, &ingestion.bulk].into_iter().chain(&ingestion.tiny) {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.1} | {:.1} | {:.0} | {} |",
                ingested.tenant,
                ingested.documents,
                ingested.chunks,
                ingested.elapsed_s,
                ingested.documents_per_s,
                ingested.chunks_per_s,
                ingested.concurrency
            );
        }
        let document = &ingestion.large_document;
        let _ = writeln!(
            out,
            "\nOne document of {} characters without whitespace (one word to the chunker): {} chunks, stored in {:.1} s; meanwhile `/healthz`, asked one request after another, answered {} times, p50 {} ms, max {} ms.",
            document.characters,
            document.chunks,
            document.elapsed_s,
            document.healthz_answered,
            p(document.healthz_ms, |p| p.p50),
            p(document.healthz_ms, |p| p.max),
        );
        if let Some(local) = &ingestion.local_embedding {
            let _ = writeln!(
                out,
                "\nLocal embedding (all-MiniLM-L6-v2 on the CPU, batches of 32): {} documents ({} chunks) in {:.1} s: **{:.2} documents/s**, {:.1} chunks/s.",
                local.documents, local.chunks, local.elapsed_s, local.documents_per_s, local.chunks_per_s
            );
        }
        out.push('\n');
    }
}

fn stream_table(out: &mut String, title: &str, levels: &[streams::Level]) {
    if levels.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "{title}\n\n| streams | errors | total p50 | total p99 | RSS before (MiB) | RSS peak (MiB) | KiB per stream | CPU ms per stream: service | database | mock | generator |\n|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for level in levels {
        let _ = writeln!(
            out,
            "| {} | {}/{} | {} | {} | {:.0} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
            level.streams,
            level.summary.errors,
            level.summary.requests,
            p(level.summary.total_ms, |p| p.p50),
            p(level.summary.total_ms, |p| p.p99),
            level.rss_before_mib,
            level.rss_peak_mib,
            level.kib_per_stream,
            level.service_cpu_ms,
            level.database_cpu_ms,
            level.mock_cpu_ms,
            level.generator_cpu_ms
        );
    }
    if let Some(level) = levels.iter().find(|level| !level.summary.error_examples.is_empty()) {
        let _ = writeln!(out, "\nErrors at {}: {:?}", level.streams, level.summary.error_examples);
    }
    out.push('\n');
}
