//! Structured logs with `tracing`. `SWITCHBOARD_LOG_FORMAT=json` switches to one JSON object per line;
//! `RUST_LOG` sets the filter. Secrets never reach a log: they are `secrecy` types, which print redacted.

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = if std::env::var("SWITCHBOARD_LOG_FORMAT").is_ok_and(|format| format == "json") {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
    // A second initialisation (tests, embedding) keeps the first subscriber.
    drop(result);
}
