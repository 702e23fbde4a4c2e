//! Named fail points for crash and panic tests, active only in debug (test) builds.
//!
//! `QUANTBOT_LAKE_FAILPOINT=<name>:<action>[,<name>:<action>…]` with action `panic`, `abort` (the process dies on the spot, like
//! SIGKILL), `sleep=<ms>`, or `off` (a platform capability named `<name>` is treated as missing, so its
//! fallback runs: `rename_exchange:off`). Release builds compile every point to nothing.

/// The configured action of `name`, read once from the environment.
#[cfg(debug_assertions)]
fn action(name: &str) -> Option<&'static str> {
    use std::sync::OnceLock;
    static CONFIG: OnceLock<Vec<(String, String)>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let raw = std::env::var("QUANTBOT_LAKE_FAILPOINT").unwrap_or_default();
            raw.split(',')
                .filter_map(|entry| entry.split_once(':'))
                .map(|(point, action)| (point.to_owned(), action.to_owned()))
                .collect()
        })
        .iter()
        .find(|(point, _)| point == name)
        .map(|(_, action)| action.as_str())
}

/// Triggers the configured action when `name` is the configured fail point.
#[cfg(debug_assertions)]
pub fn hit(name: &str) {
    let Some(action) = action(name) else {
        return;
    };
    match action {
        "panic" => panic!("fail point {name} reached"),
        "abort" => std::process::abort(),
        other => {
            if let Some(ms) = other.strip_prefix("sleep=").and_then(|v| v.parse().ok()) {
                std::thread::sleep(std::time::Duration::from_millis(ms));
            }
        }
    }
}

/// Whether the platform capability `name` is configured as missing (`<name>:off`).
#[cfg(debug_assertions)]
pub fn disabled(name: &str) -> bool {
    action(name) == Some("off")
}

/// Release builds: no fail points.
#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn hit(_name: &str) {}

/// Release builds: every capability is what the platform offers.
#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn disabled(_name: &str) -> bool {
    false
}
