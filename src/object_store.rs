//! The `object_store` block of both export configs: how to reach an `s3://` data root.

use napi_derive::napi;

/// Region, endpoint, credentials and retry budget of an `s3://` data root (snake_case on the wire). Each field set here wins
/// over its AWS environment variable; fields left out fall back to it. Refused with a directory `data_root`.
// Only its TypeScript declaration is used: the core reads the config with serde.
#[napi(object, object_from_js = false)]
pub struct LakeObjectStore {
    /// `AWS_REGION`, e.g. `eu-west-1`.
    pub region: Option<String>,
    /// `AWS_ENDPOINT_URL`: an S3-compatible server (MinIO, R2, a local test server).
    pub endpoint: Option<String>,
    /// `AWS_ALLOW_HTTP`: allow a plain-HTTP endpoint.
    #[napi(js_name = "allow_http")]
    pub allow_http: Option<bool>,
    /// `AWS_ACCESS_KEY_ID`.
    #[napi(js_name = "access_key_id")]
    pub access_key_id: Option<String>,
    /// `AWS_SECRET_ACCESS_KEY`; never written to any output, log or error.
    #[napi(js_name = "secret_access_key")]
    pub secret_access_key: Option<String>,
    /// `AWS_SESSION_TOKEN`; never written to any output, log or error.
    #[napi(js_name = "session_token")]
    pub session_token: Option<String>,
    /// Retries of one request to the store after a transient failure: throttling (503 SlowDown, 429), a
    /// server error, a connection refused, reset or timed out. Default: `AWS_MAX_ATTEMPTS` minus one, else 5;
    /// 0 leaves only the client's own quick retries of a single HTTP request.
    pub retries: Option<u32>,
    /// The most seconds one request spends waiting between its retries. Default 120.
    #[napi(js_name = "retry_max_wait")]
    pub retry_max_wait: Option<u32>,
}
