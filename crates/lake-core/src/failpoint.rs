//! Named fail points for crash and panic tests, active only in debug (test) builds.
//!
//! `QUANTBOT_LAKE_FAILPOINT=<name>:<action>` with action `panic`, `abort` (the process dies on the spot, like
//! SIGKILL) or `sleep=<ms>`. Release builds compile every point to nothing.

/// Triggers the configured action when `name` is the configured fail point.
#[cfg(debug_assertions)]
pub fn hit(name: &str) {
    use std::sync::OnceLock;
    static CONFIG: OnceLock<Option<(String, String)>> = OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        let raw = std::env::var("QUANTBOT_LAKE_FAILPOINT").ok()?;
        let (point, action) = raw.split_once(':')?;
        Some((point.to_owned(), action.to_owned()))
    });
    let Some((point, action)) = config else {
        return;
    };
    if point != name {
        return;
    }
    match action.as_str() {
        "panic" => panic!("fail point {name} reached"),
        "abort" => std::process::abort(),
        other => {
            if let Some(ms) = other.strip_prefix("sleep=").and_then(|v| v.parse().ok()) {
                std::thread::sleep(std::time::Duration::from_millis(ms));
            }
        }
    }
}

/// Release builds: no fail points.
#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn hit(_name: &str) {}
