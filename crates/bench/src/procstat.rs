//! CPU time and memory of the processes under test, from `/proc` (Linux).

use std::fs;

/// Clock ticks per second of `/proc/*/stat` times: 100 on every Linux this runs on (`getconf CLK_TCK`).
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU seconds (user + system) used so far by process `pid`, its threads included.
pub fn cpu_seconds(pid: u32) -> f64 {
    fs::read_to_string(format!("/proc/{pid}/stat")).ok().and_then(|stat| ticks(&stat)).unwrap_or(0) as f64
        / TICKS_PER_SECOND
}

/// CPU seconds used so far by one PostgreSQL server: the postmaster, the backends it reaped (their time is
/// in its cutime + cstime) and those still running (its live children).
pub fn postgres_cpu_seconds(postmaster: u32) -> f64 {
    let own = fs::read_to_string(format!("/proc/{postmaster}/stat")).ok().and_then(|stat| ticks_with_children(&stat));
    let Ok(entries) = fs::read_dir("/proc") else { return 0.0 };
    let children: u64 = entries
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().bytes().all(|byte| byte.is_ascii_digit()))
        .filter_map(|entry| fs::read_to_string(entry.path().join("stat")).ok())
        .filter(|stat| parent(stat) == Some(postmaster))
        .filter_map(|stat| ticks(&stat))
        .sum();
    (own.unwrap_or(0) + children) as f64 / TICKS_PER_SECOND
}

/// The fields after the command name (which may hold spaces): field 3 (state) is the first.
fn fields(stat: &str) -> Option<Vec<&str>> {
    Some(stat[stat.rfind(')')? + 2..].split_whitespace().collect())
}

/// The parent's pid: field 4.
fn parent(stat: &str) -> Option<u32> {
    fields(stat)?.get(1)?.parse().ok()
}

/// utime + stime + cutime + cstime: fields 14 to 17.
fn ticks_with_children(stat: &str) -> Option<u64> {
    let fields = fields(stat)?;
    (11..15).map(|index| fields.get(index)?.parse::<u64>().ok()).sum()
}

/// The pids of `pid`'s children now.
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let child: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = fs::read_to_string(entry.path().join("stat")).ok()?;
            (parent(&stat) == Some(pid)).then_some(child)
        })
        .collect()
}

/// utime + stime: fields 14 and 15.
fn ticks(stat: &str) -> Option<u64> {
    let fields = fields(stat)?;
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
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

/// CPU seconds of the service and of its PostgreSQL, at one instant.
#[derive(Debug, Clone, Copy)]
pub struct CpuMark {
    service: f64,
    database: f64,
}

impl CpuMark {
    pub fn now(service_pid: u32, postmaster: u32) -> Self {
        Self { service: cpu_seconds(service_pid), database: postgres_cpu_seconds(postmaster) }
    }

    /// CPU milliseconds (service, database) spent since `self`, per `units` of work.
    pub fn per_unit_since(self, service_pid: u32, postmaster: u32, units: usize) -> (f64, f64) {
        let now = Self::now(service_pid, postmaster);
        let units = units.max(1) as f64;
        ((now.service - self.service) * 1000.0 / units, (now.database - self.database) * 1000.0 / units)
    }
}
