//! Running the bundled PostgreSQL client programs (`pg_dump`, `pg_restore`): the connection in libpq's
//! terms, the password in the child's environment, never on its command line (where `ps` shows it).

use std::ffi::OsStr;
use std::path::Path;
use std::process::Stdio;

use secrecy::{ExposeSecret as _, SecretString};

use super::BackupError;

/// How a client program reaches the database.
#[derive(Debug)]
pub struct Connection {
    /// Passed as `--dbname`: a URL or a `key=value` connection string, without the password.
    conninfo: String,
    password: Option<SecretString>,
    /// The embedded server's clients get a clean environment (the operator's `PG*` variables are meant for
    /// another server); an external server's keep it (TLS settings, a service file, `.pgpass`).
    clean_environment: bool,
    /// Settings for the server session (`PGOPTIONS`).
    session_options: Option<String>,
}

impl Connection {
    /// The embedded server's owner, on Switchboard's database.
    pub fn embedded(port: u16, password: SecretString) -> Self {
        let conninfo = format!(
            "host=127.0.0.1 port={port} user={} dbname={}",
            crate::db::embedded::EMBEDDED_OWNER_ROLE,
            crate::db::embedded::EMBEDDED_DATABASE_NAME
        );
        Self { conninfo, password: Some(password), clean_environment: true, session_options: None }
    }

    /// The database of `DATABASE_URL`, its password moved out of the URL.
    pub fn external(url: &SecretString) -> Self {
        let (conninfo, password) = split_password(url.expose_secret());
        Self { conninfo, password: password.map(SecretString::from), clean_environment: false, session_options: None }
    }

    /// The same connection with these settings for its session, as `-c name=value` words.
    pub fn with_session_options(self, options: &str) -> Self {
        Self { session_options: Some(options.to_owned()), ..self }
    }

    /// Runs `program` with `args` and this connection; its error output becomes the error.
    pub async fn run(&self, program: &Path, args: &[&OsStr]) -> Result<(), BackupError> {
        let mut command = tokio::process::Command::new(program);
        if self.clean_environment {
            command.env_clear().env("LC_ALL", "C").env("PATH", "/usr/bin:/bin");
        }
        if let Some(password) = &self.password {
            command.env("PGPASSWORD", password.expose_secret());
        }
        if let Some(options) = &self.session_options {
            command.env("PGOPTIONS", options);
        }
        command.args(args).arg("--dbname").arg(&self.conninfo);
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        let name = program.file_name().map_or_else(|| program.display().to_string(), |n| n.to_string_lossy().into());
        let output =
            command.output().await.map_err(|source| BackupError::Io { path: program.to_path_buf(), source })?;
        if output.status.success() {
            return Ok(());
        }
        let said = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = said.lines().rev().take(20).collect();
        Err(BackupError::Tool {
            program: name,
            status: output.status.to_string(),
            output: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        })
    }
}

/// A `postgres://user:password@host/db?password=…` URL without its password (in the user part or the
/// query), and the password (percent-decoded): a command line is readable by every user of the machine.
fn split_password(url: &str) -> (String, Option<String>) {
    let (url, in_user_part) = split_user_password(url);
    let Some((base, query)) = url.split_once('?') else { return (url, in_user_part) };
    let (passwords, kept): (Vec<&str>, Vec<&str>) = query.split('&').partition(|pair| pair.starts_with("password="));
    let Some(in_query) = passwords.last() else { return (url, in_user_part) };
    let password = percent_decode(&in_query["password=".len()..].replace('+', " "));
    let url = if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) };
    (url, Some(password))
}

fn split_user_password(url: &str) -> (String, Option<String>) {
    let Some(scheme_end) = url.find("://").map(|at| at + 3) else { return (url.to_owned(), None) };
    let rest = &url[scheme_end..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let Some(at) = authority.rfind('@') else { return (url.to_owned(), None) };
    let Some(colon) = authority[..at].find(':') else { return (url.to_owned(), None) };
    let password = percent_decode(&authority[colon + 1..at]);
    (format!("{}{}{}", &url[..scheme_end], &authority[..colon], &rest[at..]), Some(password))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escaped = (bytes[index] == b'%')
            .then(|| text.get(index + 1..index + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                index += 3;
            }
            None => {
                decoded.push(bytes[index]);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_leaves_the_url_decoded() {
        for (url, stripped, password) in [
            (
                "postgres://owner:s3cret@db.example:5432/switchboard",
                "postgres://owner@db.example:5432/switchboard",
                Some("s3cret"),
            ),
            (
                "postgresql://owner:p%40ss%3Aword@host/db?sslmode=require",
                "postgresql://owner@host/db?sslmode=require",
                Some("p@ss:word"),
            ),
            ("postgres://owner@host/db", "postgres://owner@host/db", None),
            ("postgres://host/db?user=me", "postgres://host/db?user=me", None),
            ("postgres://owner:pw@host", "postgres://owner@host", Some("pw")),
            (
                "postgres://owner@host/db?password=p%26w&sslmode=require",
                "postgres://owner@host/db?sslmode=require",
                Some("p&w"),
            ),
            ("postgres://owner@host/db?password=pw", "postgres://owner@host/db", Some("pw")),
        ] {
            let (url, found) = split_password(url);
            assert_eq!(url, stripped);
            assert_eq!(found.as_deref(), password);
        }
        assert_eq!(percent_decode("100%"), "100%");
    }
}
