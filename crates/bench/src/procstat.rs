//! CPU time and memory of the processes under test, from `/proc` (Linux).

use std::fs;

/// Clock ticks per second of `/proc/*/stat` times: 100 on every Linux this runs on (`getconf CLK_TCK`).
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU seconds (user + system) used so far by process `pid`, its threads included.
pub fn cpu_seconds(pid: u32) -> f64 {
    fs::read_to_string(format!("/proc/{pid}/stat")).ok().and_then(|stat| ticks(&stat)).unwrap_or(0) as f64
        / TICKS_PER_SECOND
}

/// CPU seconds used so far by every PostgreSQL process (the server and its backends).
pub fn postgres_cpu_seconds() -> f64 {
    let Ok(entries) = fs::read_dir("/proc") else { return 0.0 };
    let ticks: u64 = entries
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().bytes().all(|byte| byte.is_ascii_digit()))
        .filter_map(|entry| fs::read_to_string(entry.path().join("stat")).ok())
        .filter(|stat| stat.contains("(postgres)"))
        .filter_map(|stat| ticks(&stat))
        .sum();
    ticks as f64 / TICKS_PER_SECOND
}

/// utime + stime: fields 14 and 15, counted after the command name (which may hold spaces).
fn ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some(user + system)
}

/// Resident memory of process `pid`, in MiB.
pub fn rss_mib(pid: u32) -> f64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next())
        .and_then(|kib| kib.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

/// CPU seconds of a process and of PostgreSQL, at one instant.
#[derive(Debug, Clone, Copy)]
pub struct CpuMark {
    service: f64,
    database: f64,
}

impl CpuMark {
    pub fn now(service_pid: u32) -> Self {
        Self { service: cpu_seconds(service_pid), database: postgres_cpu_seconds() }
    }

    /// CPU milliseconds (service, database) spent since `self`, per `units` of work.
    pub fn per_unit_since(self, service_pid: u32, units: usize) -> (f64, f64) {
        let now = Self::now(service_pid);
        let units = units.max(1) as f64;
        ((now.service - self.service) * 1000.0 / units, (now.database - self.database) * 1000.0 / units)
    }
}
