//! Who this process is, in terms another process on the same machine can check: whether the process that
//! wrote a lease still runs.
//!
//! An object-store lease of a process that died without releasing it (SIGKILL, OOM, a power cut of a
//! container) otherwise blocks its target for the lease's time to live. A later export on the same machine can
//! tell "dead" for sure, and take the lease over at once, when all of this holds: the same host name, the same
//! boot (Linux's `boot_id`, macOS's boot time) and, on Linux, the same PID namespace (containers of one host
//! share its boot id but not their process numbers), and there is no process with the recorded number, or there
//! is one that started at another time (the number was reused). Anything less certain counts as alive, and
//! the lease's usual expiry decides. Windows records nothing, so its leases always expire the usual way.

use serde::{Deserialize, Serialize};

/// A process as recorded in a lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ProcessIdentity {
    /// The host name.
    pub host: String,
    /// This boot of this machine (and, on Linux, the PID namespace): process numbers mean something only
    /// within it.
    pub boot: String,
    /// The process number.
    pub pid: u32,
    /// When the process started, in the kernel's clock ticks since boot (Linux), to tell a reused number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<u64>,
}

impl ProcessIdentity {
    /// This process, or `None` where the platform cannot tell a dead process from a live one.
    pub(crate) fn this_process() -> Option<Self> {
        let pid = std::process::id();
        Some(Self {
            host: host_name()?,
            boot: boot()?,
            pid,
            started: start_ticks(pid),
        })
    }

    /// True only when `self` ran on this machine in this boot and has certainly ended.
    pub(crate) fn has_ended(&self) -> bool {
        let Some(me) = Self::this_process() else {
            return false;
        };
        if self.host != me.host || self.boot != me.boot || self.pid == me.pid {
            return false;
        }
        if !process_exists(self.pid) {
            return true;
        }
        matches!((self.started, start_ticks(self.pid)), (Some(then), Some(now)) if then != now)
    }
}

#[cfg(unix)]
fn host_name() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that many bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8(buf[..end].to_vec())
        .ok()
        .filter(|h| !h.is_empty())
}

#[cfg(not(unix))]
fn host_name() -> Option<String> {
    None
}

#[cfg(target_os = "linux")]
fn boot() -> Option<String> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let ns = std::fs::read_link("/proc/self/ns/pid").ok()?;
    Some(format!("{} {}", id.trim(), ns.display()))
}

#[cfg(target_os = "macos")]
fn boot() -> Option<String> {
    let mut tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    let mut len = std::mem::size_of::<libc::timeval>();
    let name = c"kern.boottime";
    // SAFETY: `tv` and `len` are valid for writes and describe the same buffer; no new value is given.
    let rc = unsafe {
        libc::sysctlbyname(
            name.as_ptr(),
            (&mut tv as *mut libc::timeval).cast(),
            &mut len,
            std::ptr::null_mut(),
            0,
        )
    };
    (rc == 0).then(|| format!("{}.{:06}", tv.tv_sec, tv.tv_usec))
}

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
fn boot() -> Option<String> {
    None
}

/// `kill(pid, 0)`: no signal is sent; ESRCH says there is no such process, EPERM that there is one of
/// another user (so it is not read as dead even where /proc hides other users' processes).
#[cfg(unix)]
fn process_exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return true;
    };
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[cfg(not(unix))]
fn process_exists(_pid: u32) -> bool {
    true
}

/// Field 22 of `/proc/<pid>/stat`, counted after the command name (which may hold spaces and parentheses).
#[cfg(target_os = "linux")]
fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(not(target_os = "linux"))]
fn start_ticks(_pid: u32) -> Option<u64> {
    None
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_live_process_is_alive_and_an_ended_one_has_ended() {
        let me = ProcessIdentity::this_process().expect("this platform records processes");
        assert!(!me.has_ended(), "this very process");
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let other = ProcessIdentity {
            pid: child.id(),
            started: start_ticks(child.id()),
            ..me.clone()
        };
        assert!(!other.has_ended(), "a running child");
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(other.has_ended(), "a child that was killed and reaped");
    }

    #[test]
    fn only_this_machine_and_boot_can_tell() {
        let me = ProcessIdentity::this_process().unwrap();
        // A process number that surely does not exist here, on "another" machine or boot: not ours to judge.
        let gone = ProcessIdentity {
            pid: 0x3fff_fff0,
            started: None,
            ..me.clone()
        };
        assert!(gone.has_ended());
        for other in [
            ProcessIdentity {
                host: format!("{}-elsewhere", me.host),
                ..gone.clone()
            },
            ProcessIdentity {
                boot: "another boot".into(),
                ..gone.clone()
            },
        ] {
            assert!(!other.has_ended(), "{other:?}");
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_reused_process_number_is_told_by_its_start_time() {
        let me = ProcessIdentity::this_process().unwrap();
        let parent = ProcessIdentity {
            pid: std::os::unix::process::parent_id(),
            started: Some(1),
            ..me
        };
        assert!(
            parent.has_ended(),
            "the parent runs, but did not start at tick 1"
        );
    }
}
