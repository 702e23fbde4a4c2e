//! The HTTP client under the clickhouse crate: keep-alive, no Nagle delay, and a connect timeout that covers
//! the whole connection set-up (TCP now, a TLS handshake too when a TLS connector is wrapped).

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

/// Wraps a connector so that setting up a connection fails with [`ConnectTimedOut`] after `timeout`.
#[derive(Clone)]
pub struct TimeoutConnector<C> {
    inner: C,
    timeout: Duration,
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
        let timeout = self.timeout;
        let connecting = self.inner.call(uri);
        Box::pin(async move {
            match tokio::time::timeout(timeout, connecting).await {
                Ok(done) => done.map_err(Into::into),
                Err(_) => Err(Box::new(ConnectTimedOut(timeout)) as BoxError),
            }
        })
    }
}

/// A clickhouse client whose connections must be set up (TCP, and the TLS handshake when `tls` is given)
/// within `connect_timeout`; with `tls` it speaks HTTPS only.
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
            })
        }
        Some(config) => {
            // The TLS connector sees https:// URIs; the TCP one underneath must accept them.
            tcp.enforce_http(false);
            let https = HttpsConnectorBuilder::new()
                .with_tls_config(config)
                .https_only()
                .enable_http1()
                .wrap_connector(tcp);
            client_over(TimeoutConnector {
                inner: https,
                timeout: connect_timeout,
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

/// True when `err` (or anything it wraps) is a connect timeout from [`TimeoutConnector`].
pub fn is_connect_timeout(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if e.is::<ConnectTimedOut>() {
            return true;
        }
        cur = e.source();
    }
    false
}
