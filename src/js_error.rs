//! Crossing errors into JavaScript: every failure becomes an `Error` whose `code` is a stable lake code.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};

use lake_core::{ErrorCode, LakeError};
use napi::bindgen_prelude::{FromNapiValue, Unknown};
use napi::{Env, JsError};
use napi_derive::napi;

/// Builds a JS `Error` with `code` and `message` and wraps it so napi throws (or rejects with) that very object.
///
/// napi's own async path only knows its fixed `Status` codes; creating the object here, on the JS thread,
/// is what lets `err.code` carry our codes from sync and async functions alike.
pub fn to_js_error(env: &Env, err: &LakeError) -> napi::Error {
    let coded = napi::Error::new(err.code().as_str().to_owned(), err.message().to_owned());
    // SAFETY: `env` is the live environment of the current JS thread, as napi passes it to us.
    unsafe {
        let raw = JsError::from(coded).into_value(env.raw());
        match Unknown::from_napi_value(env.raw(), raw) {
            Ok(value) => napi::Error::from(value),
            Err(e) => e,
        }
    }
}

/// The error for a caught panic: a bug report, never a crashed Node process.
pub fn panic_error(payload: &(dyn std::any::Any + Send)) -> LakeError {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned());
    LakeError::new(
        ErrorCode::Internal,
        format!("internal error (a bug in the lake exporter): {what}; please report it with the config that caused it"),
    )
}

/// Runs synchronous core code, turning its error or panic into a coded JS error.
pub fn run_sync<T>(env: &Env, f: impl FnOnce() -> lake_core::Result<T>) -> napi::Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(to_js_error(env, &err)),
        Err(payload) => Err(to_js_error(env, &panic_error(payload.as_ref()))),
    }
}

/// Runs an async core future on napi's tokio runtime and returns a Promise; errors and panics reject it
/// with coded JS errors created back on the JS thread.
pub fn run_async<'env, T, V, Fut>(
    env: &'env Env,
    fut: Fut,
    to_js: impl 'static + FnOnce(T) -> napi::Result<V>,
) -> napi::Result<napi::bindgen_prelude::PromiseRaw<'env, V>>
where
    T: 'static + Send,
    V: napi::bindgen_prelude::ToNapiValue,
    Fut: 'static + Send + Future<Output = lake_core::Result<T>>,
{
    let guarded = async move {
        let outcome = futures_catch_unwind(fut).await;
        Ok::<_, napi::Error>(outcome)
    };
    env.spawn_future_with_callback(guarded, move |env, outcome| match outcome {
        Ok(value) => to_js(value),
        Err(err) => Err(to_js_error(env, &err)),
    })
}

async fn futures_catch_unwind<T, Fut>(fut: Fut) -> lake_core::Result<T>
where
    Fut: Future<Output = lake_core::Result<T>>,
{
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(
        move |cx| match catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(poll) => poll,
            Err(payload) => std::task::Poll::Ready(Err(panic_error(payload.as_ref()))),
        },
    )
    .await
}

/// Every error code an addon function can reject or throw with, for documentation and exhaustive handling.
#[napi]
pub fn error_codes() -> Vec<String> {
    lake_core::ErrorCode::ALL
        .iter()
        .map(|c| c.as_str().to_owned())
        .collect()
}
