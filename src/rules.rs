//! The lake's pure rules (docs/lake-format.md, "Rules"), exported for QuantBot code and tests.

use lake_core::LakeError;
use napi::Env;
use napi_derive::napi;

use crate::js_error::run_sync;

/// Largest integer a JS number holds exactly.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// Checks that a JS number is a whole number in the given range (napi would silently truncate or wrap).
fn whole_number(name: &str, value: f64, min: f64, max: f64) -> lake_core::Result<i64> {
    if !value.is_finite() || value.fract() != 0.0 || value < min || value > max {
        return Err(LakeError::invalid_config(format!(
            "{name} must be a whole number from {min} to {max}, got {value}"
        )));
    }
    Ok(value as i64)
}

fn positive_u32(name: &str, value: f64) -> lake_core::Result<u32> {
    whole_number(name, value, 1.0, f64::from(u32::MAX)).map(|v| v as u32)
}

fn count_u32(name: &str, value: f64) -> lake_core::Result<u32> {
    whole_number(name, value, 0.0, f64::from(lake_core::MAX_WINDOW_CANDLES)).map(|v| v as u32)
}

fn epoch_ms(name: &str, value: f64) -> lake_core::Result<i64> {
    whole_number(name, value, -MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
}

/// Bucket `00`..`ff` of a mint: the first byte of SHA-1 of its UTF-8 bytes.
#[napi]
pub fn compute_mint_bucket(mint: String) -> String {
    lake_core::compute_mint_bucket(&mint)
}

/// Floors epoch milliseconds to the interval (toward −∞). Throws `INVALID_CONFIG` for non-integers or a zero interval.
#[napi]
pub fn floor_to_interval(env: &Env, ts_ms: f64, interval_seconds: f64) -> napi::Result<f64> {
    run_sync(env, || {
        let ts = epoch_ms("tsMs", ts_ms)?;
        let interval = positive_u32("intervalSeconds", interval_seconds)?;
        Ok(lake_core::floor_to_interval(ts, interval)? as f64)
    })
}

/// The window of one alert, in epoch milliseconds (`endTsMs` exclusive).
#[napi(object)]
pub struct WindowSlice {
    /// The alert time floored to the interval.
    pub anchor_ts_ms: f64,
    /// First candle time in the window.
    pub start_ts_ms: f64,
    /// End of the window (exclusive).
    pub end_ts_ms: f64,
}

/// Computes `[anchor − pre·I, anchor + (post+1)·I)` for an alert. Throws `INVALID_CONFIG` on bad numbers.
#[napi]
pub fn compute_window_slice(
    env: &Env,
    alert_ts_ms: f64,
    interval_seconds: f64,
    pre_candles: f64,
    post_candles: f64,
) -> napi::Result<WindowSlice> {
    run_sync(env, || {
        let w = lake_core::compute_window_slice(
            epoch_ms("alertTsMs", alert_ts_ms)?,
            positive_u32("intervalSeconds", interval_seconds)?,
            count_u32("preCandles", pre_candles)?,
            count_u32("postCandles", post_candles)?,
        )?;
        let out = |v: i64| epoch_ms("window bound", v as f64).map(|v| v as f64);
        Ok(WindowSlice {
            anchor_ts_ms: out(w.anchor_ms)?,
            start_ts_ms: out(w.start_ms)?,
            end_ts_ms: out(w.end_ms)?,
        })
    })
}

/// A parsed `pre<N>_post<M>` window spec.
#[napi(object)]
pub struct WindowSpec {
    /// Candles before the anchor.
    pub pre_candles: u32,
    /// Candles after the anchor.
    pub post_candles: u32,
}

/// Parses `pre<N>_post<M>` strictly; anything else throws `INVALID_CONFIG` naming the expected format.
#[napi]
pub fn parse_window_spec(env: &Env, spec: String) -> napi::Result<WindowSpec> {
    run_sync(env, || {
        let w = lake_core::parse_window_spec(&spec)?;
        Ok(WindowSpec {
            pre_candles: w.pre,
            post_candles: w.post,
        })
    })
}

/// Seconds in an interval spec: `<N>s|m|h|d` (case-insensitive) or bare seconds. Throws `INVALID_CONFIG` otherwise.
#[napi]
pub fn interval_to_seconds(env: &Env, spec: String) -> napi::Result<u32> {
    run_sync(env, || lake_core::interval_to_seconds(&spec))
}
