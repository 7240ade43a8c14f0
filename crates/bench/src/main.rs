//! `switchboard-bench`: Switchboard measured against the mock upstream (its physical floor) and against a
//! peer proxy, in one run, with one open-loop load generator. See `crates/bench/README.md`.
//!
//! Usage: `switchboard-bench [--quick] [--pin] [--only SUITE,…] [--no-peer] [--no-search-index] [--traces]
//! [--vectors N]`. Suites, in the order they run: streams, memory, ingestion, retrieval, turns, passthrough,
//! checks, traces, vectors.

mod corpus;
mod env;
mod load;
mod peer;
mod procstat;
mod report;
mod suites;
mod trace_sink;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use secrecy::SecretString;
use sqlx::postgres::PgPoolOptions;

use env::{Database, Mock, Pinning, Service, Tenant};
use report::Results;
use suites::{checks, ingestion, passthrough, retrieval, streams, traces, turns, vectors};

const SUITES: [&str; 9] =
    ["streams", "memory", "ingestion", "retrieval", "turns", "passthrough", "checks", "traces", "vectors"];
const SEED: u64 = 20_261_129;
/// Documents in flight at once in the bulk row: a client loading many documents.
const BULK_CONCURRENCY: usize = 32;

/// How big each benchmark is: the full suite, or a smoke test of the harness.
struct Sizes {
    large_documents: usize,
    /// Documents sent [`BULK_CONCURRENCY`] at a time, after the large corpus.
    bulk_documents: usize,
    tiny_tenants: usize,
    tiny_documents: usize,
    local_embedding_documents: usize,
    /// Characters of the one document without whitespace.
    large_document_characters: usize,
    retrieval_queries: usize,
    turns: turns::Plan,
    passthrough: passthrough::Plan,
    checks: checks::Plan,
    traces: traces::Plan,
    streams: Vec<usize>,
    memory_streams: Vec<usize>,
    vectors: vectors::Plan,
}

impl Sizes {
    fn full() -> Self {
        Self {
            // 20 sections of one chunk each: 100,000 chunks.
            large_documents: 5_000,
            bulk_documents: 1_000,
            tiny_tenants: 20,
            tiny_documents: 3,
            local_embedding_documents: 16,
            large_document_characters: 1_000_000,
            retrieval_queries: 200,
            turns: turns::Plan {
                sequential: 100,
                levels: vec![50, 200],
                seconds: 2.0,
                saturation_workers: 32,
                saturation: Duration::from_secs(15),
            },
            passthrough: passthrough::Plan { sequential: 200, levels: vec![100, 1000], seconds: 3.0 },
            checks: checks::Plan { requests: 1000, rounds: 1000 },
            traces: traces::Plan {
                pairs: 150,
                saturation_turns: 500,
                saturation_blocks: 4,
                saturation_workers: 32,
                metric_rounds: 100_000,
            },
            streams: vec![1000, 2000, 4000],
            memory_streams: vec![1000, 5000, 10_000],
            vectors: vectors::Plan {
                vectors: 100_000,
                queries: 200,
                indexes: vec![
                    vectors::IndexKind { half: false, m: 16, ef_construction: 64 },
                    vectors::IndexKind { half: true, m: 16, ef_construction: 64 },
                    vectors::IndexKind::SERVICE,
                    vectors::IndexKind { half: true, m: 24, ef_construction: 64 },
                    vectors::IndexKind { half: true, m: 24, ef_construction: 128 },
                ],
                ef_search: vec![100, 200, 400],
            },
        }
    }

    fn quick() -> Self {
        Self {
            large_documents: 100,
            bulk_documents: 50,
            tiny_tenants: 2,
            tiny_documents: 2,
            local_embedding_documents: 2,
            large_document_characters: 1_000_000,
            retrieval_queries: 20,
            turns: turns::Plan {
                sequential: 10,
                levels: vec![10],
                seconds: 1.0,
                saturation_workers: 8,
                saturation: Duration::from_secs(3),
            },
            passthrough: passthrough::Plan { sequential: 20, levels: vec![20], seconds: 1.0 },
            checks: checks::Plan { requests: 200, rounds: 1000 },
            traces: traces::Plan {
                pairs: 20,
                saturation_turns: 200,
                saturation_blocks: 1,
                saturation_workers: 8,
                metric_rounds: 10_000,
            },
            streams: vec![50],
            memory_streams: vec![100],
            vectors: vectors::Plan {
                vectors: 5_000,
                queries: 20,
                indexes: vec![
                    vectors::IndexKind { half: false, m: 16, ef_construction: 64 },
                    vectors::IndexKind::SERVICE,
                ],
                ef_search: vec![100, 200],
            },
        }
    }
}

#[expect(clippy::struct_excessive_bools, reason = "independent command-line switches")]
struct Options {
    quick: bool,
    /// Undo migration 0010's leakproof mark: full-text search under RLS without its GIN index, as before
    /// (the A side of an A/B of that improvement).
    no_search_index: bool,
    pin: bool,
    peer: bool,
    /// Export the service's traces to a stand-in collector (`trace_sink.rs`): what tracing costs.
    traces: bool,
    /// How many vectors the vectors suite indexes, with the service's index only (1,000,000 for the large run).
    vectors: Option<usize>,
    suites: Vec<String>,
}

fn parse_options() -> anyhow::Result<Options> {
    let mut options = Options {
        quick: false,
        no_search_index: false,
        pin: false,
        peer: true,
        traces: false,
        vectors: None,
        suites: SUITES.map(str::to_owned).to_vec(),
    };
    let mut only_asked = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => options.quick = true,
            "--pin" => options.pin = true,
            "--no-peer" => options.peer = false,
            "--no-search-index" => options.no_search_index = true,
            "--traces" => options.traces = true,
            "--vectors" => {
                let count = args.next().context("--vectors needs a count")?;
                options.vectors = Some(count.parse().context("--vectors needs a count")?);
            }
            "--only" => {
                let list = args.next().context("--only needs a comma-separated list of suites")?;
                options.suites = list.split(',').map(str::to_owned).collect();
                only_asked = true;
                if let Some(unknown) = options.suites.iter().find(|suite| !SUITES.contains(&suite.as_str())) {
                    anyhow::bail!("unknown suite {unknown}; the suites are {}", SUITES.join(", "));
                }
            }
            "-h" | "--help" => {
                println!(
                    "usage: switchboard-bench [--quick] [--pin] [--no-peer] [--no-search-index] [--traces] [--vectors N] [--only {}]",
                    SUITES.join(",")
                );
                std::process::exit(0);
            }
            other => anyhow::bail!("unknown argument {other} (try --help)"),
        }
    }
    // The traces suite's untraced side is the main service, which `--traces` traces.
    if options.traces {
        if only_asked && options.suites.iter().any(|suite| suite == "traces") {
            anyhow::bail!("the traces suite compares against the main service untraced: run it without --traces");
        }
        options.suites.retain(|suite| suite != "traces");
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = parse_options()?;
    // The library's own events, from the suites that call it directly (`search::full_text`, the checks),
    // when asked: `RUST_LOG=switchboard::retrieval::search=debug` shows each full-text search's phases.
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    }
    // Interrupted, the run is dropped: its child processes are killed and PostgreSQL is stopped.
    tokio::select! {
        result = run(options) => result,
        _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted"),
    }
}

/// The sizes of this run: full or quick, and the vectors' count if one was asked.
fn sizes_of(options: &Options) -> Sizes {
    let mut sizes = if options.quick { Sizes::quick() } else { Sizes::full() };
    if let Some(count) = options.vectors {
        // At scale, the service's own index alone: each build takes long.
        sizes.vectors.vectors = count;
        sizes.vectors.indexes = vec![vectors::IndexKind::SERVICE];
    }
    sizes
}

/// The embedded PostgreSQL, its processes so far pinned; backends it forks later inherit the postmaster's core.
async fn start_database(data_dir: &Path, pinning: Pinning) -> anyhow::Result<Database> {
    let database = Database::start(data_dir).await?;
    if let Some(pid) = database.server.pid() {
        pinning.pin(pid, Pinning::SERVER_CORE).await;
        for child in procstat::children(pid) {
            pinning.pin(child, Pinning::SERVER_CORE).await;
        }
    }
    Ok(database)
}

#[expect(clippy::too_many_lines, reason = "the run's steps in their order, each suite a few lines")]
async fn run(options: Options) -> anyhow::Result<()> {
    let sizes = sizes_of(&options);
    let wants = |suite: &str| options.suites.iter().any(|wanted| wanted == suite);
    // Counted before this process is pinned to one of them.
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let pinning = Pinning { enabled: options.pin };
    pinning.pin(std::process::id(), Pinning::CLIENT_CORE).await;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target");
    let data_dir = root.join("bench-data");
    let results_dir = root.join("bench-results");
    std::fs::create_dir_all(&results_dir)?;

    let mut results = results_of_this_run(&options, cores);

    eprintln!("starting PostgreSQL, the mocks and Switchboard…");
    let database = start_database(&data_dir, pinning).await?;
    // Instant answers; also the platform's embeddings endpoint.
    let fast = Mock::start(20, Duration::ZERO, pinning).await?;
    // 50 tokens 20 ms apart: a one-second answer, for the concurrent pass-through runs.
    let slow = Mock::start(50, Duration::from_millis(20), pinning).await?;
    // 40 tokens 25 ms apart: a one-second answer for chat turns.
    let turn_mock = Mock::start(40, Duration::from_millis(25), pinning).await?;
    // 200 tokens 20 ms apart: a four-second stream.
    let stream_mock = Mock::start(200, Duration::from_millis(20), pinning).await?;
    let trace_sink = trace_sink::TraceSink::start_if(options.traces).await?;
    let service =
        Service::start(&database, &fast, &data_dir, pinning, trace_sink.as_ref().map(|sink| sink.endpoint.as_str()))
            .await?;
    let client = env::client();
    let owner = PgPoolOptions::new().max_connections(4).connect_with(database.owner_options()).await?;
    let app_password = switchboard::config::app_database_password(&SecretString::from(env::MASTER_KEY));
    let app = switchboard::db::connect_app_pool(&database.owner_options(), &app_password).await?;
    if options.no_search_index {
        sqlx::query("ALTER FUNCTION ts_match_vq(tsvector, tsquery) NOT LEAKPROOF").execute(&owner).await?;
        results.notes.push("--no-search-index: full-text matching under RLS without its GIN index".to_owned());
    }

    let large = Tenant::create(&client, &service, "large", &fast).await?;
    let mut tiny = Vec::new();
    for index in 0..sizes.tiny_tenants {
        let slug = format!("tiny-{index:02}");
        tiny.push((Tenant::create(&client, &service, &slug, &fast).await?, slug));
    }

    // First, on a fresh service, so that its memory growth is the streams' alone.
    stream_suites(&client, &service, &database, &stream_mock, &sizes, pinning, &wants, &mut results).await?;

    if wants("ingestion") {
        let one_word = Tenant::create(&client, &service, "one-word", &fast).await?;
        let bulk = Tenant::create(&client, &service, "bulk", &fast).await?;
        let tenants = CorpusTenants { large: &large, bulk: &bulk, tiny: &tiny, one_word: &one_word };
        results.ingestion =
            Some(build_corpus(&client, &service, &tenants, &data_dir, &sizes, &owner, &mut results.notes).await?);
    }
    let corpus_chunks: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM doc_chunks WHERE tenant_id = (SELECT id FROM tenants WHERE slug = 'large')",
    )
    .fetch_one(&owner)
    .await?;

    if wants("retrieval") {
        eprintln!("retrieval…");
        let queries = sizes.retrieval_queries;
        results
            .retrieval
            .push(retrieval::measure(&client, &service, &large, "large", SEED, queries, &owner, &app).await?);
        if let Some((tenant, slug)) = tiny.first() {
            results
                .retrieval
                .push(retrieval::measure(&client, &service, tenant, slug, SEED + 1, queries, &owner, &app).await?);
        }
    }

    if wants("turns") {
        eprintln!("chat turns over `large`…");
        let plan = &sizes.turns;
        let postmaster = database.server.pid().unwrap_or_default();
        results.turns = Some(
            turns::run(&client, &service, &large, &turn_mock, &fast, corpus_chunks, SEED, plan, postmaster).await?,
        );
    }

    if wants("passthrough") {
        eprintln!("pass-through…");
        let (doors, peer) =
            passthrough_doors(&client, &service, &fast, &slow, options.peer, pinning, &mut results).await?;
        results.passthrough = passthrough::run(&client, &doors, &sizes.passthrough).await;
        drop(peer);
    }

    if wants("checks") {
        eprintln!("budget and rate-limit checks…");
        results.checks = Some(checks::run(&client, &service, &fast, &app, &owner, &sizes.checks).await?);
    }

    if wants("traces") {
        eprintln!("what tracing costs a turn: the same turns against a second service that exports its spans…");
        let plan = &sizes.traces;
        let traced = traces::run(
            &client,
            &service,
            &large,
            &database,
            &data_dir,
            pinning,
            &turn_mock,
            &fast,
            corpus_chunks,
            SEED,
            plan,
        );
        results.traces = Some(traced.await?);
    }

    hold_if_asked(&database, &data_dir).await?;
    service.stop().await;
    if wants("vectors") {
        eprintln!("vectors: {} in a table of their own…", sizes.vectors.vectors);
        results.vectors = vectors::run(&database.server.maintenance_options(), SEED, &sizes.vectors).await?;
    }
    // After the service stopped: it sends what it still had batched when it stops.
    let sink_note = trace_sink.as_ref().map(|sink| format!("--traces: {}", sink.summary()));
    results.notes.extend(sink_note.inspect(|note| eprintln!("{note}")));
    database.stop().await;
    write_results(&results, &results_dir)
}

/// With `BENCH_HOLD` set, keeps the database and the service up after the suites, for `EXPLAIN` and
/// experiments on the corpus they built: the owner's URL is written to `bench-data/hold-url` (readable by
/// this user alone), and the run goes on once that file is deleted.
async fn hold_if_asked(database: &Database, data_dir: &Path) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;

    use secrecy::ExposeSecret as _;

    if std::env::var_os("BENCH_HOLD").is_none() {
        return Ok(());
    }
    let path = data_dir.join("hold-url");
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&path)?;
    writeln!(file, "{}", database.owner_url.expose_secret())?;
    eprintln!("BENCH_HOLD: the database stays up; its owner URL is in {}; delete that file to go on", path.display());
    while path.exists() {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Ok(())
}

/// Prints the tables, and writes them with every number in JSON beside the earlier runs'.
/// What is known of the run before it starts: when, at which commit, on what machine, how.
fn results_of_this_run(options: &Options, cores: usize) -> Results {
    Results {
        started_at: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        commit: git_commit(),
        cpu: cpu_model(),
        cores,
        quick: options.quick,
        pinned: options.pin,
        ..Results::default()
    }
}

fn write_results(results: &Results, dir: &Path) -> anyhow::Result<()> {
    let markdown = results.markdown();
    let stem = dir.join(format!("bench-{}", chrono::Utc::now().format("%Y%m%dT%H%M%S")));
    std::fs::write(stem.with_extension("json"), serde_json::to_string_pretty(results)?)?;
    std::fs::write(stem.with_extension("md"), &markdown)?;
    println!("{markdown}");
    eprintln!("results: {}.json and .md", stem.display());
    Ok(())
}

/// The tenants [`build_corpus`] writes.
struct CorpusTenants<'a> {
    large: &'a Tenant,
    /// Many documents at once into an empty tenant, after `large`: the bulk row.
    bulk: &'a Tenant,
    tiny: &'a [(Tenant, String)],
    one_word: &'a Tenant,
}

/// Ingests the large corpus, a bulk load and the tiny tenants' documents (timed), one large document
/// without whitespace into a tenant of its own, then times the local embedding model.
async fn build_corpus(
    client: &reqwest::Client,
    service: &Service,
    tenants: &CorpusTenants<'_>,
    data_dir: &std::path::Path,
    sizes: &Sizes,
    owner: &sqlx::PgPool,
    notes: &mut Vec<String>,
) -> anyhow::Result<report::Ingestion> {
    eprintln!("ingestion: {} documents into `large`…", sizes.large_documents);
    let large =
        ingestion::ingest(client, service, tenants.large, "large", SEED, sizes.large_documents, 4, owner).await?;
    eprintln!("  {:.0} chunks/s ({} chunks)", large.chunks_per_s, large.chunks);
    eprintln!("ingestion: {} documents into `bulk`, {BULK_CONCURRENCY} at a time…", sizes.bulk_documents);
    let bulk = ingestion::ingest(
        client,
        service,
        tenants.bulk,
        "bulk",
        SEED + 1_000,
        sizes.bulk_documents,
        BULK_CONCURRENCY,
        owner,
    )
    .await?;
    eprintln!("  {:.0} chunks/s ({} chunks)", bulk.chunks_per_s, bulk.chunks);
    let mut tiny_ingested = Vec::new();
    for (index, (tenant, slug)) in tenants.tiny.iter().enumerate() {
        let seed = SEED + 1 + index as u64;
        tiny_ingested
            .push(ingestion::ingest(client, service, tenant, slug, seed, sizes.tiny_documents, 2, owner).await?);
    }
    eprintln!("ingestion: one document of {} characters without whitespace…", sizes.large_document_characters);
    let large_document =
        ingestion::large_document(client, service, tenants.one_word, sizes.large_document_characters).await?;
    eprintln!("  {:.1} s ({} chunks)", large_document.elapsed_s, large_document.chunks);
    eprintln!("ingestion: the local embedding model…");
    let local_embedding = match ingestion::local_embedding(data_dir, SEED, sizes.local_embedding_documents).await {
        Ok(local) => Some(local),
        Err(error) => {
            notes.push(format!("the local embedding model could not be measured: {error}"));
            None
        }
    };
    Ok(report::Ingestion { large, bulk, tiny: tiny_ingested, large_document, local_embedding })
}

/// Each route both proxies serve, with its targets: direct to the mocks, through Switchboard (a tenant
/// per mock, each with its own OpenAI and Anthropic keys, both pointing at that mock), and through the
/// peer when it can run.
///
/// The mock's floor of a route is the request the proxies send upstream: its chat completion for
/// `/v1/chat/completions`, its Anthropic message for `/v1/messages` (Switchboard over its Anthropic
/// provider, LiteLLM over an `anthropic/` model), and its chat completion again for `/v1/responses`,
/// which the mock does not serve: Switchboard answers it over its OpenAI provider's chat completions,
/// and LiteLLM's `*-responses` models bridge it to chat completions (`use_chat_completions_api`).
async fn passthrough_doors(
    client: &reqwest::Client,
    service: &Service,
    fast: &Mock,
    slow: &Mock,
    with_peer: bool,
    pinning: Pinning,
    results: &mut Results,
) -> anyhow::Result<(Vec<passthrough::Door>, Option<peer::Peer>)> {
    use passthrough::{Door, Route, Target, Wire};
    let fast_tenant = Tenant::create(client, service, "pass-fast", fast).await?;
    let slow_tenant = Tenant::create(client, service, "pass-slow", slow).await?;
    fast_tenant.use_anthropic_mock(client, service, fast).await?;
    slow_tenant.use_anthropic_mock(client, service, slow).await?;
    let route = |url: String, key: &str, model: &str| Route { url, key: key.to_owned(), model: model.to_owned() };
    let direct = |wire: Wire| {
        let url = |mock: &Mock| match wire {
            Wire::ChatCompletions | Wire::Responses => format!("{}/chat/completions", mock.openai_base()),
            Wire::Messages => format!("{}/v1/messages", mock.anthropic_base()),
        };
        // The mock's own answer to what the proxies send it.
        let wire = if wire == Wire::Messages { Wire::Messages } else { Wire::ChatCompletions };
        Target {
            name: "direct",
            wire,
            fast: route(url(fast), "direct", "bench-model"),
            slow: route(url(slow), "direct", "bench-model"),
        }
    };
    let switchboard = |wire: Wire| {
        let url = format!("{}{}", service.base, wire.path());
        // `anthropic/` routes to the tenant's Anthropic key; a bare name to its default, OpenAI.
        let model = if wire == Wire::Messages { "anthropic/bench-model" } else { "bench-model" };
        Target {
            name: "switchboard",
            wire,
            fast: route(url.clone(), &fast_tenant.key, model),
            slow: route(url, &slow_tenant.key, model),
        }
    };
    let wires = [Wire::ChatCompletions, Wire::Messages, Wire::Responses];
    let mut doors: Vec<Door> =
        wires.map(|wire| Door { route: wire, targets: vec![direct(wire), switchboard(wire)] }).to_vec();
    if !with_peer {
        results.peer_missing = Some("--no-peer".to_owned());
        return Ok((doors, None));
    }
    eprintln!("starting LiteLLM (the first run installs it)…");
    match peer::Peer::start(fast, slow, pinning).await {
        Ok(peer) => {
            for door in &mut doors {
                let wire = door.route;
                let url = format!("{}{}", peer.base, wire.path());
                // Its models per route (peer/litellm.yaml): `openai/` for chat completions, `anthropic/`
                // for messages, `openai/` bridged to chat completions for responses.
                let suffix = match wire {
                    Wire::ChatCompletions => "",
                    Wire::Messages => "-anthropic",
                    Wire::Responses => "-responses",
                };
                door.targets.push(Target {
                    name: "litellm",
                    wire,
                    fast: route(url.clone(), peer::KEY, &format!("mock-fast{suffix}")),
                    slow: route(url, peer::KEY, &format!("mock-slow{suffix}")),
                });
            }
            Ok((doors, Some(peer)))
        }
        Err(reason) => {
            eprintln!("  LiteLLM did not start: {reason}");
            results.peer_missing = Some(reason);
            Ok((doors, None))
        }
    }
}

fn git_commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .map_or_else(|| "unknown".to_owned(), |commit| commit.trim().to_owned())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines().find_map(|line| {
                line.strip_prefix("model name").map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".to_owned())
}

/// The streams and memory suites, each on a tenant of its own.
#[expect(clippy::too_many_arguments, reason = "the run's shared parts, passed as they are")]
async fn stream_suites(
    client: &reqwest::Client,
    service: &Service,
    database: &Database,
    stream_mock: &Mock,
    sizes: &Sizes,
    pinning: Pinning,
    wants: &impl Fn(&str) -> bool,
    results: &mut Results,
) -> anyhow::Result<()> {
    let postmaster = database.server.pid().unwrap_or_default();
    if wants("streams") {
        eprintln!("concurrent streams…");
        let tenant = Tenant::create(client, service, "streams", stream_mock).await?;
        results.streams = streams::run(client, service, &tenant, stream_mock, postmaster, &sizes.streams, None).await?;
    }
    if wants("memory") {
        eprintln!("many open streams…");
        // 60 tokens 1.5 s apart: a 90-second answer, open while the level's other streams start.
        let long_mock = Mock::start(60, Duration::from_millis(1500), pinning).await?;
        let tenant = Tenant::create(client, service, "memory", &long_mock).await?;
        let rate = Some(streams::MEMORY_STARTS_PER_SECOND);
        results.memory =
            streams::run(client, service, &tenant, &long_mock, postmaster, &sizes.memory_streams, rate).await?;
    }
    Ok(())
}
