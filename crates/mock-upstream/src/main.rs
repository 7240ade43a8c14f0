//! `mock-upstream` binary: serves the mock providers on a fixed address for benchmarks and manual runs.
//!
//! Usage: `mock-upstream [--listen 127.0.0.1:9000] [--tokens 200] [--delay-ms 20]`

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use mock_upstream::{Defaults, MockUpstream};

const USAGE: &str = "usage: mock-upstream [--listen ADDR:PORT] [--tokens N] [--delay-ms MS]";

/// Parses `--flag value` and `--flag=value` by hand: three flags do not justify an argument-parsing dependency.
fn parse_args(args: impl IntoIterator<Item = String>) -> Result<(SocketAddr, Defaults), String> {
    let mut listen = SocketAddr::from(([127, 0, 0, 1], 9000));
    let mut defaults = Defaults::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
            None => (arg, None),
        };
        if flag == "--help" || flag == "-h" {
            return Err(String::new());
        }
        let value = inline.or_else(|| args.next()).ok_or_else(|| format!("{flag} needs a value"))?;
        let invalid = |error: &dyn std::fmt::Display| format!("{flag} {value}: {error}");
        match flag.as_str() {
            "--listen" => listen = value.parse().map_err(|e| invalid(&e))?,
            "--tokens" => defaults.tokens = value.parse().map_err(|e| invalid(&e))?,
            "--delay-ms" => defaults.chunk_delay = Duration::from_millis(value.parse().map_err(|e| invalid(&e))?),
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    Ok((listen, defaults))
}

#[tokio::main]
async fn main() -> ExitCode {
    let (listen, defaults) = match parse_args(std::env::args().skip(1)) {
        Ok(parsed) => parsed,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("mock-upstream: {message}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mock = match MockUpstream::start_with(listen, defaults).await {
        Ok(mock) => mock,
        Err(error) => {
            eprintln!("mock-upstream: cannot listen on {listen}: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", mock.url());
    // Serve until interrupted; the server runs in its own task.
    let _ = tokio::signal::ctrl_c().await;
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn parses_flags() {
        let (listen, defaults) = parse_args(args(&["--listen", "127.0.0.1:9100", "--tokens=200", "--delay-ms", "20"]))
            .expect("valid arguments");
        assert_eq!(listen, SocketAddr::from(([127, 0, 0, 1], 9100)));
        assert_eq!(defaults.tokens, 200);
        assert_eq!(defaults.chunk_delay, Duration::from_millis(20));
        assert!(parse_args(args(&["--tokens"])).is_err());
        assert!(parse_args(args(&["--nope", "1"])).is_err());
    }
}
