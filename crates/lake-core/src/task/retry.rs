//! Asking a server again after a transient failure, within the user's budget.
//!
//! One policy for every request the exporter makes, to ClickHouse (the table check, mint discovery,
//! fingerprints, every fetch query) and to an object store (leases, listings, uploads, the commit): exponential
//! backoff with jitter, at most `<server>.retries` retries of one request and at most `<server>.retry_max_wait`
//! seconds of waiting for it, each wait ended at once by a cancellation. A request that made progress before it
//! failed (whole mints arrived) starts a fresh budget for what is left, so a long export survives faults spread
//! over its hours. What counts as transient is decided where the errors are made (ClickHouse's `server_error`
//! and `Connection::timeout_error`, the object store's `store_error`) and listed in docs/lake-format.md,
//! "Retries".

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{LakeError, Result, Transient};
use crate::task::cancel::CancelFlag;

/// The first wait; each retry of the same request doubles it, up to [`LONGEST_WAIT`].
const FIRST_WAIT: Duration = Duration::from_millis(500);
/// The longest single wait.
const LONGEST_WAIT: Duration = Duration::from_secs(30);
/// How often a wait looks at the cancellation flag.
const CANCEL_POLL: Duration = Duration::from_millis(50);

/// How much retrying one request may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The config block whose `retries` and `retry_max_wait` set this budget (`clickhouse`, `object_store`),
    /// named when the budget runs out.
    pub block: &'static str,
    /// Retries after the first attempt; 0 fails at the first transient failure.
    pub retries: u32,
    /// The most time spent waiting between the attempts of one request.
    pub max_wait: Duration,
}

/// One retry, as the export reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryNotice {
    /// Which server: the budget's config block, `clickhouse` or `object_store`.
    pub server: &'static str,
    /// What failed.
    pub cause: Transient,
    /// Which retry of the request this is, from 1.
    pub retry: u32,
    /// Retries the budget allows one request.
    pub retries: u32,
    /// The wait before asking again.
    pub wait: Duration,
}

/// Hears of every retry (the export turns them into progress events).
pub type RetryObserver = Arc<dyn Fn(RetryNotice) + Send + Sync>;

/// The policy, who hears of retries, and how many there were; clones share the observer and the count.
#[derive(Clone)]
pub struct Retrier {
    policy: RetryPolicy,
    observer: Option<RetryObserver>,
    count: Arc<AtomicU64>,
}

impl std::fmt::Debug for Retrier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Retrier")
            .field("policy", &self.policy)
            .field("count", &self.count())
            .finish_non_exhaustive()
    }
}

impl Retrier {
    /// A retrier with `policy` that tells no one.
    pub fn new(policy: RetryPolicy) -> Self {
        Self {
            policy,
            observer: None,
            count: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Reports every retry to `observer` as well.
    pub fn observed(mut self, observer: Option<RetryObserver>) -> Self {
        self.observer = observer;
        self
    }

    /// Retries made so far, by this retrier and its clones.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// The budget of one new request.
    pub fn request(&self) -> Attempts<'_> {
        Attempts {
            retrier: self,
            retries_used: 0,
            waited: Duration::ZERO,
            started: Instant::now(),
        }
    }
}

/// The retries of one request.
pub struct Attempts<'a> {
    retrier: &'a Retrier,
    retries_used: u32,
    waited: Duration,
    started: Instant,
}

impl Attempts<'_> {
    /// After a failure: waits and returns `Ok` when the request should be made again; otherwise returns the
    /// error, saying how many attempts were made over how long when the budget ran out.
    pub async fn after(&mut self, err: LakeError, cancel: &CancelFlag) -> Result<()> {
        let Some(cause) = err.transient_kind() else {
            return Err(err);
        };
        let policy = self.retrier.policy;
        if policy.retries == 0 {
            return Err(err);
        }
        let wait = backoff(self.retries_used);
        if self.retries_used >= policy.retries || self.waited + wait > policy.max_wait {
            return Err(LakeError::new(
                err.code(),
                format!(
                    "{}; gave up after {} attempts over {:.1} s ({block}.retries {}, {block}.retry_max_wait {} s)",
                    err.message(),
                    self.retries_used + 1,
                    self.started.elapsed().as_secs_f64(),
                    policy.retries,
                    policy.max_wait.as_secs(),
                    block = policy.block,
                ),
            ));
        }
        self.retries_used += 1;
        self.waited += wait;
        self.retrier.count.fetch_add(1, Ordering::Relaxed);
        if let Some(observer) = &self.retrier.observer {
            observer(RetryNotice {
                server: policy.block,
                cause,
                retry: self.retries_used,
                retries: policy.retries,
                wait,
            });
        }
        sleep_unless_cancelled(wait, cancel).await
    }

    /// The request made progress since its last failure: what is left starts with a fresh budget.
    pub fn progressed(&mut self) {
        self.retries_used = 0;
        self.waited = Duration::ZERO;
        self.started = Instant::now();
    }
}

/// The wait before retry `n + 1`: `FIRST_WAIT * 2^n`, at most `LONGEST_WAIT`, then a random half of it taken
/// off, so that exporters that failed together do not come back together.
fn backoff(n: u32) -> Duration {
    let full = FIRST_WAIT
        .saturating_mul(1u32 << n.min(16))
        .min(LONGEST_WAIT);
    let jitter = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    full.mul_f64(0.5 + 0.5 * (jitter as f64 / u64::MAX as f64))
}

async fn sleep_unless_cancelled(wait: Duration, cancel: &CancelFlag) -> Result<()> {
    let until = Instant::now() + wait;
    loop {
        cancel.check()?;
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        tokio::time::sleep(left.min(CANCEL_POLL)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use std::sync::Mutex;

    fn lost() -> LakeError {
        LakeError::transient(
            Transient::ConnectionLost,
            ErrorCode::ClickhouseUnreachable,
            "the connection was lost",
        )
    }

    #[test]
    fn backoff_doubles_up_to_a_cap_with_at_most_half_taken_off() {
        for n in 0..12 {
            let full = (FIRST_WAIT * 2u32.pow(n)).min(LONGEST_WAIT);
            let wait = backoff(n);
            assert!(wait <= full && wait >= full / 2, "{n}: {wait:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_transient_failures_within_the_budget_and_says_so_when_it_runs_out() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let retrier = Retrier::new(RetryPolicy {
            block: "clickhouse",
            retries: 3,
            max_wait: Duration::from_secs(600),
        })
        .observed(Some(Arc::new(move |n| log.lock().unwrap().push(n))));
        let cancel = CancelFlag::new();
        let mut attempts = retrier.request();
        for _ in 0..3 {
            attempts.after(lost(), &cancel).await.unwrap();
        }
        let err = attempts.after(lost(), &cancel).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::ClickhouseUnreachable);
        assert!(err.message().contains("gave up after 4 attempts"), "{err}");
        assert!(err.message().contains("connection was lost"), "{err}");
        assert!(err.transient_kind().is_none(), "a final error");
        let seen = seen.lock().unwrap();
        assert_eq!(
            seen.iter()
                .map(|n| (n.retry, n.retries))
                .collect::<Vec<_>>(),
            vec![(1, 3), (2, 3), (3, 3)]
        );
        assert!(seen.iter().all(|n| n.cause == Transient::ConnectionLost));
        assert_eq!(retrier.count(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn what_cannot_succeed_and_a_zero_budget_fail_at_once() {
        let cancel = CancelFlag::new();
        let retrier = Retrier::new(RetryPolicy {
            block: "clickhouse",
            retries: 5,
            max_wait: Duration::from_secs(60),
        });
        let auth = LakeError::new(ErrorCode::ClickhouseAuth, "wrong password");
        assert_eq!(
            retrier.request().after(auth.clone(), &cancel).await,
            Err(auth)
        );
        let fail_fast = Retrier::new(RetryPolicy {
            block: "clickhouse",
            retries: 0,
            max_wait: Duration::from_secs(60),
        });
        assert_eq!(
            fail_fast.request().after(lost(), &cancel).await,
            Err(lost())
        );
        assert_eq!(retrier.count() + fail_fast.count(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn the_wait_budget_and_progress_bound_and_renew_it() {
        let cancel = CancelFlag::new();
        let retrier = Retrier::new(RetryPolicy {
            block: "clickhouse",
            retries: 100,
            max_wait: Duration::from_secs(2),
        });
        let mut attempts = retrier.request();
        // 0.25-0.5 s, then 0.5-1 s: at most 1.5 s; the third (1-2 s) would pass 2 s in the worst case only.
        attempts.after(lost(), &cancel).await.unwrap();
        attempts.after(lost(), &cancel).await.unwrap();
        let mut failed = false;
        for _ in 0..3 {
            if attempts.after(lost(), &cancel).await.is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed, "the wait budget ends the retries");
        attempts.progressed();
        attempts.after(lost(), &cancel).await.unwrap();
    }

    #[tokio::test]
    async fn a_cancellation_ends_the_wait_at_once() {
        let cancel = CancelFlag::new();
        let retrier = Retrier::new(RetryPolicy {
            block: "clickhouse",
            retries: 10,
            max_wait: Duration::from_secs(3600),
        });
        let mut attempts = retrier.request();
        // Push the next wait to its cap (15-30 s), then cancel while it runs.
        attempts.retries_used = 8;
        let flag = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            flag.cancel();
        });
        let started = Instant::now();
        let err = attempts.after(lost(), &cancel).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::Cancelled);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
}
