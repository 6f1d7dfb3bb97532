//! EDGE (Linux): process figures from `/proc`: a process's CPU time (`/proc/<pid>/stat` utime and
//! stime, all threads), resident memory (`/proc/<pid>/status` VmRSS and VmHWM), open file
//! descriptors (`/proc/<pid>/fd`) and this process's open-file limit (`/proc/self/limits`).

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

/// `(utime, stime)` in clock ticks from the text of `/proc/<pid>/stat`.
pub fn parse_stat_user_sys(stat: &str) -> Option<(u64, u64)> {
    let after = &stat[stat.rfind(')')? + 1..];
    let mut f = after.split_whitespace().skip(11);
    Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
}

/// CPU time of a process, seconds, all threads.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuTimes {
    /// User mode.
    pub user: f64,
    /// Kernel mode.
    pub system: f64,
}

impl CpuTimes {
    /// User + system.
    pub fn total(&self) -> f64 {
        self.user + self.system
    }

    /// `self − earlier`.
    pub fn since(&self, earlier: &CpuTimes) -> CpuTimes {
        CpuTimes {
            user: self.user - earlier.user,
            system: self.system - earlier.system,
        }
    }
}

fn read_proc(path: String) -> Result<(String, String), SimError> {
    match std::fs::read_to_string(&path) {
        Ok(t) => Ok((path, t)),
        Err(e) => Err(SimError::Proc {
            path,
            reason: e.to_string(),
        }),
    }
}

/// User and system CPU seconds used so far by process `pid` (`None`: this process).
pub fn cpu_times(pid: Option<u32>) -> Result<CpuTimes, SimError> {
    let (path, text) = read_proc(match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".into(),
    })?;
    parse_stat_user_sys(&text)
        .map(|(u, s)| CpuTimes {
            user: u as f64 / CLOCK_TICKS_PER_SEC,
            system: s as f64 / CLOCK_TICKS_PER_SEC,
        })
        .ok_or_else(|| SimError::Proc {
            path,
            reason: "unexpected format".into(),
        })
}

/// CPU seconds (user + system, all threads) used so far by process `pid`.
pub fn cpu_seconds(pid: u32) -> Result<f64, SimError> {
    cpu_times(Some(pid)).map(|t| t.total())
}

/// A `kB` field (e.g. `VmRSS`, `VmHWM`) from the text of `/proc/<pid>/status`, in KiB.
pub fn parse_status_kib(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Resident memory of process `pid`: `(VmRSS, VmHWM)` in KiB.
pub fn rss_kib(pid: u32) -> Result<(u64, u64), SimError> {
    let (path, text) = read_proc(format!("/proc/{pid}/status"))?;
    match (
        parse_status_kib(&text, "VmRSS"),
        parse_status_kib(&text, "VmHWM"),
    ) {
        (Some(rss), Some(hwm)) => Ok((rss, hwm)),
        _ => Err(SimError::Proc {
            path,
            reason: "no VmRSS/VmHWM".into(),
        }),
    }
}

/// Open file descriptors of process `pid` (`None`: this process), counted in `/proc/<pid>/fd`.
pub fn open_fds(pid: Option<u32>) -> Result<u64, SimError> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/fd"),
        None => "/proc/self/fd".into(),
    };
    match std::fs::read_dir(&path) {
        Ok(d) => Ok(d.count() as u64),
        Err(e) => Err(SimError::Proc {
            path,
            reason: e.to_string(),
        }),
    }
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
        assert_eq!(parse_stat_user_sys(stat), Some((250, 75)));
        assert!(cpu_times(None).is_ok());
        assert!(open_fds(None).is_ok_and(|n| n >= 3));
        let (rss, hwm) = rss_kib(std::process::id()).unwrap();
        assert!(rss > 0 && hwm >= rss);
    }

    #[test]
    fn status_fields() {
        let status = "Name:\tacs\nVmHWM:\t  123456 kB\nVmRSS:\t   99999 kB\n";
        assert_eq!(parse_status_kib(status, "VmRSS"), Some(99_999));
        assert_eq!(parse_status_kib(status, "VmHWM"), Some(123_456));
        assert_eq!(parse_status_kib(status, "VmSwap"), None);
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
