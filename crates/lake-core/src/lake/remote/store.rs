//! Opening an S3 store from the standard AWS environment, and turning its failures into coded lake errors
//! that say what to check (never a credential: object_store's messages carry none, and we add none) and
//! whether asking again may help.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::client::{HttpError, HttpErrorKind};
use object_store::{BackoffConfig, ObjectStore, RetryConfig};
use serde::Deserialize;

use crate::config::facts::FACTS;
use crate::error::{ErrorCode, LakeError, Result, Transient};
use crate::task::retry::RetryPolicy;

/// The client's own retries of one HTTP request (5xx, throttling, a connection that failed before the
/// request went out), within this time: the fast, inner loop. Around it, `RemoteLake::retried` asks again,
/// within the user's `object_store.retries` budget, what the client does not (docs/lake-format.md, "Retries").
const RETRY_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_RETRIES: usize = 3;

/// The `object_store` block of the export configs: what the AWS environment would say, given in the config
/// instead (each field set here wins over its variable).
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ObjectStoreConfig {
    /// `AWS_REGION`.
    #[serde(default)]
    pub region: Option<String>,
    /// `AWS_ENDPOINT_URL`: an S3-compatible server (MinIO, R2, a local test server).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// `AWS_ALLOW_HTTP`: allow a plain-HTTP endpoint.
    #[serde(default)]
    pub allow_http: Option<bool>,
    /// `AWS_ACCESS_KEY_ID`.
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// `AWS_SECRET_ACCESS_KEY`; never written to any output, log or error.
    #[serde(default)]
    pub secret_access_key: Option<String>,
    /// `AWS_SESSION_TOKEN`; never written to any output, log or error.
    #[serde(default)]
    pub session_token: Option<String>,
    /// Retries of one request to the store after a transient failure (`AWS_MAX_ATTEMPTS` minus one);
    /// `clickhouse.retries`' default and range.
    #[serde(default)]
    pub retries: Option<u64>,
    /// The most seconds one request spends waiting between its retries; `clickhouse.retry_max_wait`'s default
    /// and range.
    #[serde(default)]
    pub retry_max_wait: Option<u64>,
}

impl ObjectStoreConfig {
    /// The retry budget: the block's fields, else `AWS_MAX_ATTEMPTS` (attempts, as the AWS SDKs count them),
    /// else the defaults ClickHouse requests have.
    pub(crate) fn retry_policy(&self) -> Result<RetryPolicy> {
        let from_env = || -> Result<Option<u64>> {
            let Ok(text) = std::env::var("AWS_MAX_ATTEMPTS") else {
                return Ok(None);
            };
            match text.trim().parse::<u64>() {
                Ok(n) if n >= 1 => Ok(Some(n - 1)),
                _ => Err(LakeError::invalid_config(format!(
                    "invalid AWS_MAX_ATTEMPTS {text:?}: give a whole number of attempts, 1 or more"
                ))),
            }
        };
        let retries = match self.retries {
            Some(n) => n,
            None => from_env()?.unwrap_or(FACTS.retries.default),
        };
        let retries = FACTS.retries.check("object_store.retries", retries)?;
        let max_wait = FACTS.retry_max_wait.check(
            "object_store.retry_max_wait",
            self.retry_max_wait.unwrap_or(FACTS.retry_max_wait.default),
        )?;
        Ok(RetryPolicy {
            block: "object_store",
            retries: u32::try_from(retries).unwrap_or(u32::MAX),
            max_wait: Duration::from_secs(max_wait),
        })
    }
}

impl std::fmt::Debug for ObjectStoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |s: &Option<String>| s.as_ref().map(|_| "<hidden>");
        f.debug_struct("ObjectStoreConfig")
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("allow_http", &self.allow_http)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &hidden(&self.secret_access_key))
            .field("session_token", &hidden(&self.session_token))
            .field("retries", &self.retries)
            .field("retry_max_wait", &self.retry_max_wait)
            .finish()
    }
}

/// An S3 store for `bucket`. Credentials, region and endpoint come from `config`, else from
/// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` (or `AWS_DEFAULT_REGION`),
/// `AWS_ENDPOINT_URL` and `AWS_ALLOW_HTTP` (for a plain-HTTP endpoint such as a local test server).
pub fn open_s3(bucket: &str, config: &ObjectStoreConfig) -> Result<Arc<dyn ObjectStore>> {
    install_crypto_provider();
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
    if std::env::var_os("AWS_REGION").is_none() {
        if let Ok(region) = std::env::var("AWS_DEFAULT_REGION") {
            builder = builder.with_region(region);
        }
    }
    let c = config.clone();
    if let Some(v) = c.region {
        builder = builder.with_region(v);
    }
    if let Some(v) = c.endpoint {
        builder = builder.with_endpoint(v);
    }
    if let Some(v) = c.allow_http {
        builder = builder.with_allow_http(v);
    }
    if let Some(v) = c.access_key_id {
        builder = builder.with_access_key_id(v);
    }
    if let Some(v) = c.secret_access_key {
        builder = builder.with_secret_access_key(v);
    }
    if let Some(v) = c.session_token {
        builder = builder.with_token(v);
    }
    let retry = RetryConfig {
        backoff: BackoffConfig::default(),
        max_retries: MAX_RETRIES,
        retry_timeout: RETRY_TIMEOUT,
    };
    let store = builder.with_retry(retry).build().map_err(|e| {
        LakeError::invalid_config(format!(
            "cannot set up the S3 client for bucket {bucket:?}: {e}; check AWS_REGION, AWS_ENDPOINT_URL and AWS_ALLOW_HTTP"
        ))
    })?;
    Ok(Arc::new(store))
}

/// reqwest is built without a TLS crypto provider of its own (the default one needs cmake and does not
/// cross-build for old glibc); rustls then uses the process default, which we set to ring once.
fn install_crypto_provider() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        // Fails only when some other part of the process installed one first, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A coded error for a failed `what` (e.g. "upload") on `url`, marked transient when asking again may help.
pub fn store_error(what: &str, url: &str, err: &object_store::Error) -> LakeError {
    let coded = coded_error(what, url, err);
    match transient_kind(err) {
        Some(kind) => LakeError::transient(kind, coded.code(), coded.message()),
        None => coded,
    }
}

/// Why the same request may pass next time: the store could not be reached, the connection broke or timed
/// out, or it answered with a server error or "slow down" (also inside a 200, as S3 sometimes does).
/// Everything else (refused credentials, a missing bucket, a bad request) would fail again.
fn transient_kind(err: &object_store::Error) -> Option<Transient> {
    if let Some(kind) = http_kind(err) {
        return match kind {
            HttpErrorKind::Connect => Some(Transient::Unreachable),
            HttpErrorKind::Request | HttpErrorKind::Interrupted => Some(Transient::ConnectionLost),
            HttpErrorKind::Timeout => Some(Transient::Silent),
            _ => None,
        };
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        let text = e.to_string();
        if let Some(rest) = text.strip_prefix("Server returned non-2xx status code: ") {
            let status: u16 = rest.get(..3)?.parse().ok()?;
            return match status {
                429 | 503 => Some(Transient::Busy),
                408 => Some(Transient::Silent),
                500..=599 => Some(Transient::Gateway),
                _ => None,
            };
        }
        if text.starts_with("Server returned error response: ") {
            return Some(Transient::Busy);
        }
        source = e.source();
    }
    None
}

fn coded_error(what: &str, url: &str, err: &object_store::Error) -> LakeError {
    use object_store::Error as E;
    let detail = err.to_string();
    match err {
        E::Unauthenticated { .. } | E::PermissionDenied { .. } => LakeError::new(
            ErrorCode::ObjectStoreAuth,
            format!(
                "the object store refused to {what} {url}: {detail}; check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) and that they may use this bucket"
            ),
        ),
        _ if http_kind(err).is_some_and(|k| {
            matches!(k, HttpErrorKind::Connect | HttpErrorKind::Timeout)
        }) =>
        {
            LakeError::new(
                ErrorCode::ObjectStoreUnreachable,
                format!(
                    "cannot reach the object store to {what} {url}: {detail}; check AWS_ENDPOINT_URL (and AWS_ALLOW_HTTP for a plain-HTTP endpoint) and that the server is up"
                ),
            )
        }
        _ if detail.contains("NoSuchBucket") => LakeError::new(
            ErrorCode::ObjectStore,
            format!("cannot {what} {url}: the bucket does not exist; create it or fix data_root"),
        ),
        _ if looks_like_bad_credentials(&detail) => LakeError::new(
            ErrorCode::ObjectStoreAuth,
            format!(
                "the object store refused to {what} {url}: {detail}; check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            ),
        ),
        _ => LakeError::new(
            ErrorCode::ObjectStore,
            format!("cannot {what} {url}: {detail}"),
        ),
    }
}

/// S3 answers a bad key or signature with 403 codes that some versions of the client report generically.
fn looks_like_bad_credentials(detail: &str) -> bool {
    [
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AccessDenied",
        "ExpiredToken",
    ]
    .iter()
    .any(|code| detail.contains(code))
}

fn http_kind(err: &object_store::Error) -> Option<HttpErrorKind> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(http) = e.downcast_ref::<HttpError>() {
            return Some(http.kind());
        }
        source = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generic(message: &str) -> object_store::Error {
        object_store::Error::Generic {
            store: "S3",
            source: message.into(),
        }
    }

    #[test]
    fn failures_map_to_codes_that_say_what_to_check() {
        let denied = object_store::Error::PermissionDenied {
            path: "k".into(),
            source: "403".into(),
        };
        let err = store_error("upload", "s3://b/k", &denied);
        assert_eq!(err.code(), ErrorCode::ObjectStoreAuth);
        assert!(err.message().contains("AWS_ACCESS_KEY_ID"), "{err}");
        let err = store_error(
            "upload",
            "s3://b/k",
            &generic("<Code>InvalidAccessKeyId</Code>"),
        );
        assert_eq!(err.code(), ErrorCode::ObjectStoreAuth);
        let err = store_error("list", "s3://b", &generic("<Code>NoSuchBucket</Code>"));
        assert_eq!(err.code(), ErrorCode::ObjectStore);
        assert!(err.message().contains("bucket does not exist"), "{err}");
        let err = store_error("list", "s3://b", &generic("500 Internal Server Error"));
        assert_eq!(err.code(), ErrorCode::ObjectStore);
    }

    #[test]
    fn what_may_pass_next_time_is_marked_transient() {
        let http = |kind| object_store::Error::Generic {
            store: "S3",
            source: Box::new(HttpError::new(kind, std::io::Error::other("x"))),
        };
        let cases = [
            (http(HttpErrorKind::Connect), Some(Transient::Unreachable)),
            (http(HttpErrorKind::Interrupted), Some(Transient::ConnectionLost)),
            (http(HttpErrorKind::Request), Some(Transient::ConnectionLost)),
            (http(HttpErrorKind::Timeout), Some(Transient::Silent)),
            (http(HttpErrorKind::Decode), None),
            (
                generic("Server returned non-2xx status code: 503 Service Unavailable: <Code>SlowDown</Code>"),
                Some(Transient::Busy),
            ),
            (
                generic("Server returned non-2xx status code: 500 Internal Server Error: "),
                Some(Transient::Gateway),
            ),
            (
                generic("Server returned error response: <Error><Code>InternalError</Code></Error>"),
                Some(Transient::Busy),
            ),
            (
                generic("Server returned non-2xx status code: 400 Bad Request: "),
                None,
            ),
            (generic("<Code>NoSuchBucket</Code>"), None),
        ];
        for (err, kind) in cases {
            let coded = store_error("upload", "s3://b/k", &err);
            assert_eq!(coded.transient_kind(), kind, "{err}");
        }
        let down = store_error("upload", "s3://b/k", &http(HttpErrorKind::Connect));
        assert_eq!(down.code(), ErrorCode::ObjectStoreUnreachable);
    }

    #[test]
    fn the_retry_budget_comes_from_the_block_else_aws_max_attempts() {
        let block = ObjectStoreConfig {
            retries: Some(7),
            retry_max_wait: Some(30),
            ..Default::default()
        };
        let policy = block.retry_policy().unwrap();
        assert_eq!((policy.retries, policy.max_wait.as_secs()), (7, 30));
        let policy = ObjectStoreConfig::default().retry_policy().unwrap();
        let expected = match std::env::var("AWS_MAX_ATTEMPTS") {
            Ok(n) => n.parse::<u32>().unwrap() - 1,
            Err(_) => FACTS.retries.default as u32,
        };
        assert_eq!(policy.retries, expected);
        let too_many = ObjectStoreConfig {
            retries: Some(1000),
            ..Default::default()
        };
        let err = too_many.retry_policy().unwrap_err();
        assert!(err.message().contains("object_store.retries"), "{err}");
    }

    #[test]
    fn the_config_never_prints_its_secrets() {
        let config = ObjectStoreConfig {
            secret_access_key: Some("very-secret-key".into()),
            session_token: Some("very-secret-token".into()),
            access_key_id: Some("AKIA-visible".into()),
            ..Default::default()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("very-secret"), "{shown}");
        assert!(shown.contains("AKIA-visible"), "{shown}");
    }
}
