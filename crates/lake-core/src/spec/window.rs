//! Alert windows: the `pre<N>_post<M>` spec, flooring to the interval and the `[start, end)` slice (docs/lake-format.md, "Rules").

use crate::error::{LakeError, Result};

/// The largest `pre` or `post` count accepted: coverage counts are int32 and windows must stay far from i64 overflow.
pub const MAX_WINDOW_CANDLES: u32 = 10_000_000;

/// A parsed window spec: candles kept before the anchor and after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSpec {
    /// Candles before the anchor candle.
    pub pre: u32,
    /// Candles after the anchor candle (the anchor itself is extra).
    pub post: u32,
}

/// The time range of one alert's window, in epoch milliseconds; `end_ms` is exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSlice {
    /// The alert time floored to the interval.
    pub anchor_ms: i64,
    /// First candle time of the window (inclusive).
    pub start_ms: i64,
    /// End of the window (exclusive).
    pub end_ms: i64,
}

/// Parses `pre<N>_post<M>` strictly (`^pre(\d+)_post(\d+)$`).
pub fn parse_window_spec(spec: &str) -> Result<WindowSpec> {
    let invalid = |why: &str| {
        LakeError::invalid_config(format!(
            "invalid window {spec:?}: {why}; expected pre<N>_post<M> with whole numbers, e.g. \"pre52_post4948\""
        ))
    };
    let rest = spec
        .strip_prefix("pre")
        .ok_or_else(|| invalid("it must start with \"pre\""))?;
    let (pre, post) = rest
        .split_once("_post")
        .ok_or_else(|| invalid("\"_post\" is missing"))?;
    let count = |digits: &str, name: &str| -> Result<u32> {
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(&format!("the {name} count must be a whole number")));
        }
        match digits.parse::<u64>() {
            Ok(n) if n <= u64::from(MAX_WINDOW_CANDLES) => Ok(n as u32),
            _ => Err(invalid(&format!(
                "the {name} count is larger than {MAX_WINDOW_CANDLES}"
            ))),
        }
    };
    Ok(WindowSpec {
        pre: count(pre, "pre")?,
        post: count(post, "post")?,
    })
}

/// Floors an epoch-ms timestamp to the interval, toward negative infinity.
pub fn floor_to_interval(ts_ms: i64, interval_s: u32) -> Result<i64> {
    if interval_s == 0 {
        return Err(LakeError::invalid_config(
            "interval seconds must be greater than zero",
        ));
    }
    let step = i64::from(interval_s) * 1000;
    Ok(ts_ms.div_euclid(step) * step)
}

/// The window of an alert: `anchor = floor(ts)`, `[anchor − pre·I, anchor + (post+1)·I)`.
pub fn compute_window_slice(
    alert_ts_ms: i64,
    interval_s: u32,
    pre: u32,
    post: u32,
) -> Result<WindowSlice> {
    if pre > MAX_WINDOW_CANDLES || post > MAX_WINDOW_CANDLES {
        return Err(LakeError::invalid_config(format!(
            "window counts must be at most {MAX_WINDOW_CANDLES} candles each"
        )));
    }
    let anchor_ms = floor_to_interval(alert_ts_ms, interval_s)?;
    let step = i64::from(interval_s) * 1000;
    let overflow = || {
        LakeError::invalid_config(format!(
            "the window around {alert_ts_ms} ms does not fit in 64-bit milliseconds; use a smaller window or interval"
        ))
    };
    let start_ms = step
        .checked_mul(i64::from(pre))
        .and_then(|d| anchor_ms.checked_sub(d))
        .ok_or_else(overflow)?;
    let end_ms = step
        .checked_mul(i64::from(post) + 1)
        .and_then(|d| anchor_ms.checked_add(d))
        .ok_or_else(overflow)?;
    Ok(WindowSlice {
        anchor_ms,
        start_ms,
        end_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use proptest::prelude::*;

    #[test]
    fn floor_vectors() {
        let vectors = [
            (1_609_459_200_000, 60, 1_609_459_200_000),
            (1_609_459_230_000, 60, 1_609_459_200_000),
            (1_609_459_259_000, 60, 1_609_459_200_000),
            (1_609_459_200_123, 1, 1_609_459_200_000),
            (1_609_459_320_000, 300, 1_609_459_200_000),
            (-1, 60, -60_000),
        ];
        for (ts, interval, floored) in vectors {
            assert_eq!(
                floor_to_interval(ts, interval).unwrap(),
                floored,
                "{ts} {interval}"
            );
        }
        assert_eq!(
            floor_to_interval(1, 0).unwrap_err().code(),
            ErrorCode::InvalidConfig
        );
    }

    #[test]
    fn window_vectors() {
        let w = compute_window_slice(1_609_459_200_000, 60, 52, 4948).unwrap();
        assert_eq!(
            (w.anchor_ms, w.start_ms, w.end_ms),
            (1_609_459_200_000, 1_609_456_080_000, 1_609_756_140_000)
        );
        assert_eq!((w.end_ms - w.start_ms) / 60_000, 5001);
        let w = compute_window_slice(1_609_459_230_000, 60, 10, 10).unwrap();
        assert_eq!(
            (w.anchor_ms, w.start_ms, w.end_ms),
            (1_609_459_200_000, 1_609_458_600_000, 1_609_459_860_000)
        );
    }

    #[test]
    fn window_spec_vectors() {
        assert_eq!(
            parse_window_spec("pre52_post4948").unwrap(),
            WindowSpec {
                pre: 52,
                post: 4948
            }
        );
        assert_eq!(
            parse_window_spec("pre10_post20").unwrap(),
            WindowSpec { pre: 10, post: 20 }
        );
        for bad in [
            "invalid",
            "pre52",
            "post4948",
            "pre-5_post10",
            "pre10_post20_post30",
            "",
            "pre_post",
            "pre1_post",
            "PRE1_POST2",
            " pre1_post2",
            "pre1_post2 ",
            "pre+1_post2",
            "pre99999999999_post1",
        ] {
            let err = parse_window_spec(bad).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidConfig, "{bad}");
            assert!(err.message().contains("pre<N>_post<M>"), "{bad}: {err}");
        }
    }

    #[test]
    fn window_overflow_is_an_error_not_a_panic() {
        let err =
            compute_window_slice(i64::MAX - 5, 86_400, MAX_WINDOW_CANDLES, MAX_WINDOW_CANDLES)
                .unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidConfig);
        assert!(compute_window_slice(0, 1, MAX_WINDOW_CANDLES + 1, 0).is_err());
    }

    proptest! {
        #[test]
        fn window_arithmetic_never_panics(ts in any::<i64>(), interval in any::<u32>(), pre in any::<u32>(), post in any::<u32>()) {
            if let Ok(w) = compute_window_slice(ts, interval, pre, post) {
                prop_assert!(w.start_ms <= w.anchor_ms && w.anchor_ms < w.end_ms);
                prop_assert!(w.anchor_ms <= ts);
                prop_assert_eq!((w.end_ms - w.start_ms) / (i64::from(interval) * 1000), i64::from(pre) + 1 + i64::from(post));
            }
        }

        #[test]
        fn window_spec_parser_never_panics(s in ".{0,40}") {
            let _ = parse_window_spec(&s);
        }

        #[test]
        fn window_spec_round_trips(pre in 0u32..=MAX_WINDOW_CANDLES, post in 0u32..=MAX_WINDOW_CANDLES) {
            prop_assert_eq!(parse_window_spec(&format!("pre{pre}_post{post}")).unwrap(), WindowSpec { pre, post });
        }

        #[test]
        fn interval_parser_never_panics(s in ".{0,20}") {
            let _ = crate::spec::interval::interval_to_seconds(&s);
        }
    }
}
