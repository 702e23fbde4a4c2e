//! Opening an S3 store from the standard AWS environment, and turning its failures into coded lake errors
//! that say what to check (never a credential: object_store's messages carry none, and we add none).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::client::{HttpError, HttpErrorKind};
use object_store::{BackoffConfig, ObjectStore, RetryConfig};
use serde::Deserialize;

use crate::error::{ErrorCode, LakeError, Result};

/// How long a request is retried before its failure is reported: long enough for a server's brief
/// hiccup, short enough that a wrong endpoint is reported within a minute.
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

/// A coded error for a failed `what` (e.g. "upload") on `url`.
pub fn store_error(what: &str, url: &str, err: &object_store::Error) -> LakeError {
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
