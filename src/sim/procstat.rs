//! EDGE (Linux): process figures from `/proc`: a process's CPU time (`/proc/<pid>/stat` utime +
//! stime, all threads) and this process's open-file limit (`/proc/self/limits`).

use super::error::SimError;

/// Clock ticks per second of `/proc/<pid>/stat` times (`USER_HZ`, 100 on Linux builds in
/// practice; reading `sysconf(_SC_CLK_TCK)` would need `unsafe` FFI, which this crate forbids).
pub const CLOCK_TICKS_PER_SEC: f64 = 100.0;

/// `utime + stime` in clock ticks from the text of `/proc/<pid>/stat` (fields 14 and 15,
/// counted after the parenthesised command name, which may contain spaces).
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    // After ")": field 3 (state) is index 0, so utime (14) is index 11 and stime (15) index 12.
    let mut f = after.split_whitespace().skip(11);
    let utime: u64 = f.next()?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    Some(utime + stime)
}

/// CPU seconds (user + system, all threads) used so far by process `pid`.
pub fn cpu_seconds(pid: u32) -> Result<f64, SimError> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).map_err(|e| SimError::Proc {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    parse_stat_ticks(&text)
        .map(|t| t as f64 / CLOCK_TICKS_PER_SEC)
        .ok_or_else(|| SimError::Proc {
            path,
            reason: "unexpected format".into(),
        })
}

/// The soft "Max open files" limit from the text of `/proc/<pid>/limits`; `None` if unlimited or
/// absent.
pub fn parse_open_files_limit(limits: &str) -> Option<u64> {
    limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|soft| soft.parse().ok())
}

/// This process's soft open-file limit (`ulimit -n`), when it can be read.
pub fn open_files_limit() -> Option<u64> {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .as_deref()
        .and_then(parse_open_files_limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_ticks() {
        let stat =
            "1234 (acs media) S 1 1234 1234 0 -1 4194560 2000 0 0 0 250 75 0 0 20 0 9 0 100 0 0";
        assert_eq!(parse_stat_ticks(stat), Some(325));
        assert_eq!(parse_stat_ticks("garbage"), None);
        let own = cpu_seconds(std::process::id());
        assert!(own.is_ok_and(|s| s >= 0.0));
    }

    #[test]
    fn limits() {
        let text = "Limit                     Soft Limit           Hard Limit           Units\n\
                    Max processes             95000                95000                processes\n\
                    Max open files            1024                 524288               files\n";
        assert_eq!(parse_open_files_limit(text), Some(1024));
        assert_eq!(
            parse_open_files_limit("Max open files            unlimited  unlimited  files"),
            None
        );
    }
}
