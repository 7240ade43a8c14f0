//! The memory the embedded PostgreSQL is told it has. Its defaults (a 128 MB buffer cache, and a planner
//! that assumes 4 GB of cache) were chosen for the smallest machines: at 100,000 chunks a tenant's vector
//! index alone is over 100 MB, so every search would read its pages back from the kernel one by one. The
//! buffer cache gets a quarter of the memory this process may use, as PostgreSQL's own guidance suggests
//! for a dedicated server, within bounds that keep a laptop or a test run comfortable; the planner is told
//! of three quarters.

/// PostgreSQL's own default, the least it is given.
const LEAST_BUFFERS_MB: u64 = 128;
/// The most it is given: beyond this, the kernel's cache serves as well, and several test servers on one
/// machine stay cheap (shared memory is only resident once it is touched).
const MOST_BUFFERS_MB: u64 = 2048;

/// `-c` settings for the memory of a machine (or container) with `memory_mb` of it: the buffer cache and
/// the planner's idea of the cache.
pub fn settings(memory_mb: u64) -> [String; 2] {
    let buffers = (memory_mb / 4).clamp(LEAST_BUFFERS_MB, MOST_BUFFERS_MB);
    let cache = (memory_mb * 3 / 4).max(buffers);
    [format!("shared_buffers={buffers}MB"), format!("effective_cache_size={cache}MB")]
}

/// The memory this process may use, in MB: the machine's, or its control group's limit when lower.
/// `None` when neither can be read (the defaults then stand).
pub fn available_mb() -> Option<u64> {
    let machine = std::fs::read_to_string("/proc/meminfo").ok().as_deref().and_then(mem_total_mb);
    let group = std::fs::read_to_string("/sys/fs/cgroup/memory.max").ok().and_then(|limit| {
        // "max" when there is no limit.
        limit.trim().parse::<u64>().ok().map(|bytes| bytes / (1024 * 1024))
    });
    match (machine, group) {
        (Some(machine), Some(group)) => Some(machine.min(group)),
        (machine, group) => machine.or(group),
    }
}

/// `MemTotal` of `/proc/meminfo` (in kB there), in MB.
fn mem_total_mb(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|line| line.starts_with("MemTotal:"))?;
    let kilobytes: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kilobytes / 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quarter_of_the_memory_between_postgresqls_default_and_two_gigabytes() {
        assert_eq!(
            settings(24 * 1024),
            ["shared_buffers=2048MB".to_owned(), "effective_cache_size=18432MB".to_owned()]
        );
        assert_eq!(settings(4096), ["shared_buffers=1024MB".to_owned(), "effective_cache_size=3072MB".to_owned()]);
        assert_eq!(settings(256), ["shared_buffers=128MB".to_owned(), "effective_cache_size=192MB".to_owned()]);
    }

    #[test]
    fn the_machines_memory_is_read_from_meminfo() {
        let meminfo = "MemTotal:       24576000 kB\nMemFree:        1000 kB\n";
        assert_eq!(mem_total_mb(meminfo), Some(24_000));
        assert_eq!(mem_total_mb("nothing here"), None);
    }
}
