//! The HTTP client under the clickhouse crate: keep-alive, no Nagle delay, and a connect timeout for each step of
//! setting up a connection: the TCP connection, then (HTTPS) the TLS handshake, each failing with its own error
//! so that a port that does not speak TLS is not reported as a server that does not answer.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::Uri;
use hyper_rustls::HttpsConnectorBuilder;
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use tower_service::Service;

/// TCP keep-alive probes on idle connections.
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);
/// Idle pooled connections are dropped before the server's keep-alive (3 s on 18.16, 10 s later) closes them.
const POOL_IDLE: Duration = Duration::from_secs(2);

/// The error of a connection that was not set up within the connect timeout.
#[derive(Debug)]
pub struct ConnectTimedOut(pub Duration);

impl std::fmt::Display for ConnectTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no connection within {} s", self.0.as_secs())
    }
}

impl std::error::Error for ConnectTimedOut {}

/// The error of a TCP connection whose TLS handshake did not finish within the connect timeout: what a plain HTTP
/// port (or anything else that waits for a request) does with a TLS hello.
#[derive(Debug)]
pub struct HandshakeTimedOut(pub Duration);

impl std::fmt::Display for HandshakeTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no TLS handshake within {} s", self.0.as_secs())
    }
}

impl std::error::Error for HandshakeTimedOut {}

/// Wraps a connector so that setting up a connection fails with `on_timeout(timeout)` after `timeout`.
#[derive(Clone)]
pub struct TimeoutConnector<C> {
    inner: C,
    timeout: Duration,
    on_timeout: fn(Duration) -> BoxError,
}

fn connect_timed_out(t: Duration) -> BoxError {
    Box::new(ConnectTimedOut(t))
}

fn handshake_timed_out(t: Duration) -> BoxError {
    Box::new(HandshakeTimedOut(t))
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<C> Service<Uri> for TimeoutConnector<C>
where
    C: Service<Uri> + Send,
    C::Future: Send + 'static,
    C::Error: Into<BoxError>,
{
    type Response = C::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<C::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let (timeout, on_timeout) = (self.timeout, self.on_timeout);
        let connecting = self.inner.call(uri);
        Box::pin(async move {
            match tokio::time::timeout(timeout, connecting).await {
                Ok(done) => done.map_err(Into::into),
                Err(_) => Err(on_timeout(timeout)),
            }
        })
    }
}

/// A clickhouse client whose TCP connections must be set up within `connect_timeout`, and with `tls` (HTTPS only)
/// their TLS handshake within `connect_timeout` more.
pub fn http_client(
    connect_timeout: Duration,
    tls: Option<rustls::ClientConfig>,
) -> clickhouse::Client {
    let mut tcp = HttpConnector::new();
    tcp.set_keepalive(Some(TCP_KEEPALIVE));
    tcp.set_nodelay(true);
    match tls {
        None => {
            tcp.enforce_http(true);
            client_over(TimeoutConnector {
                inner: tcp,
                timeout: connect_timeout,
                on_timeout: connect_timed_out,
            })
        }
        Some(config) => {
            // The TLS connector sees https:// URIs; the TCP one underneath must accept them.
            tcp.enforce_http(false);
            let tcp = TimeoutConnector {
                inner: tcp,
                timeout: connect_timeout,
                on_timeout: connect_timed_out,
            };
            let https = HttpsConnectorBuilder::new()
                .with_tls_config(config)
                .https_only()
                .enable_http1()
                .wrap_connector(tcp);
            // The TCP step inside keeps its own timeout (and error); this one bounds the handshake after it.
            client_over(TimeoutConnector {
                inner: https,
                timeout: connect_timeout * 2,
                on_timeout: handshake_timed_out,
            })
        }
    }
}

fn client_over<C>(connector: C) -> clickhouse::Client
where
    C: Connect + Clone + Send + Sync + 'static,
{
    let hyper = HyperClient::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE)
        .build(connector);
    clickhouse::Client::with_http_client(hyper)
}

/// True when `err` (or anything it wraps) is an `E` from [`TimeoutConnector`].
fn wraps<E: std::error::Error + 'static>(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if e.is::<E>() {
            return true;
        }
        cur = e.source();
    }
    false
}

/// True when `err` is a TCP connect timeout.
pub fn is_connect_timeout(err: &(dyn std::error::Error + 'static)) -> bool {
    wraps::<ConnectTimedOut>(err)
}

/// True when `err` is a TLS handshake timeout.
pub fn is_handshake_timeout(err: &(dyn std::error::Error + 'static)) -> bool {
    wraps::<HandshakeTimedOut>(err)
}
