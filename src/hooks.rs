//! What a caller passes beside a config: `{ onProgress?, signal? }`, turned into the core's export hooks.

use std::sync::Arc;

use lake_core::{CancelFlag, ExportHooks, ProgressEvent};
use napi::bindgen_prelude::{FnArgs, Function, JsObjectValue, Object};
use napi::threadsafe_function::ThreadsafeFunctionCallMode;
use napi::Env;
use napi_derive::napi;

/// One progress event; counters never decrease.
#[napi(object)]
pub struct LakeProgressEvent {
    /// `loading_alerts`, `exporting`, `finishing`, `sealing` or `done`.
    pub phase: String,
    /// Mints whose candles are written.
    #[napi(js_name = "mints_done")]
    pub mints_done: f64,
    /// Mints planned; 0 while unknown (a corpus day learns its mints as it reads them).
    #[napi(js_name = "mints_total")]
    pub mints_total: f64,
    /// Candle rows written so far.
    pub rows: f64,
    /// Bytes of finished data files.
    pub bytes: f64,
    /// The corpus day being written, `YYYY-MM-DD` (absent in a run).
    pub day: Option<String>,
    /// Corpus days sealed so far (0 in a run).
    #[napi(js_name = "days_done")]
    pub days_done: f64,
    /// Corpus days this export writes, skipped days not counted (0 in a run).
    #[napi(js_name = "days_total")]
    pub days_total: f64,
    /// On the one event that reports a retry of a request to ClickHouse or the object store: which server, what
    /// failed (`unreachable`, `connection_lost`, `timeout`, `server_busy`, `gateway`), which retry of the
    /// request this is (from 1), how many its budget allows, and the wait before it, in milliseconds.
    pub retry: Option<LakeRetryNotice>,
}

/// A request to ClickHouse or the object store about to be made again (docs/lake-format.md, "Retries").
#[napi(object)]
pub struct LakeRetryNotice {
    /// `clickhouse` or `object_store`: whose budget (`clickhouse.retries`, `object_store.retries`) it uses.
    pub server: String,
    /// `unreachable`, `connection_lost`, `timeout`, `server_busy` or `gateway`.
    pub cause: String,
    /// Which retry of the request this is, from 1.
    pub attempt: u32,
    /// Retries the budget allows one request.
    pub retries: u32,
    /// Milliseconds before the request is made again.
    #[napi(js_name = "wait_ms")]
    pub wait_ms: f64,
}

impl From<ProgressEvent> for LakeProgressEvent {
    fn from(e: ProgressEvent) -> Self {
        Self {
            phase: e.phase.as_str().to_owned(),
            mints_done: e.mints_done as f64,
            mints_total: e.mints_total as f64,
            rows: e.rows as f64,
            bytes: e.bytes as f64,
            day: e.day_label(),
            days_done: e.days_done as f64,
            days_total: e.days_total as f64,
            retry: e.retry.map(|r| LakeRetryNotice {
                server: r.server.to_owned(),
                cause: r.cause.as_str().to_owned(),
                attempt: r.retry,
                retries: r.retries,
                wait_ms: r.wait.as_millis() as f64,
            }),
        }
    }
}

/// Builds the export hooks from `{ onProgress?, signal? }`: progress through a threadsafe function, and an
/// `abort` listener on the signal that flips the cancel flag.
pub fn hooks_from_options(env: &Env, options: Option<Object>) -> napi::Result<ExportHooks> {
    let mut hooks = ExportHooks::default();
    let Some(options) = options else {
        return Ok(hooks);
    };
    if let Some(callback) =
        options.get_named_property::<Option<Function<LakeProgressEvent, ()>>>("onProgress")?
    {
        let tsfn = callback
            .build_threadsafe_function::<LakeProgressEvent>()
            .callee_handled::<false>()
            .build()?;
        hooks.progress = Some(Arc::new(move |event: ProgressEvent| {
            tsfn.call(event.into(), ThreadsafeFunctionCallMode::NonBlocking);
        }));
    }
    if let Some(signal) = options.get_named_property::<Option<Object>>("signal")? {
        attach_abort_signal(env, &signal, &hooks.cancel)?;
    }
    Ok(hooks)
}

/// `EventTarget.prototype.addEventListener(type, listener)`.
type AddEventListener<'a> = Function<'a, FnArgs<(String, Function<'a, (), ()>)>, ()>;

fn attach_abort_signal(env: &Env, signal: &Object, cancel: &CancelFlag) -> napi::Result<()> {
    if signal
        .get_named_property::<Option<bool>>("aborted")?
        .unwrap_or(false)
    {
        cancel.cancel();
        return Ok(());
    }
    let flag = cancel.clone();
    let on_abort = env.create_function_from_closure::<(), (), _>("onAbort", move |_| {
        flag.cancel();
        Ok(())
    })?;
    let add: AddEventListener = signal.get_named_property("addEventListener")?;
    add.apply(signal, FnArgs::from(("abort".to_owned(), on_abort)))?;
    Ok(())
}
