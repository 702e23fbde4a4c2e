//! Candle intervals: `<N>s|m|h|d` or bare seconds (docs/lake-format.md, "Rules").

use crate::error::{LakeError, Result};

/// The largest interval accepted, in seconds: the `interval_s` column is an int32.
pub const MAX_INTERVAL_SECONDS: u64 = i32::MAX as u64;

/// A parsed interval: the config string kept verbatim (it names directories) and its length in seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interval {
    spec: String,
    seconds: u32,
}

impl Interval {
    /// Parses `<N>s`, `<N>m`, `<N>h`, `<N>d` (case-insensitive) or bare seconds; N must be > 0.
    pub fn parse(spec: &str) -> Result<Self> {
        let seconds = interval_to_seconds(spec)?;
        Ok(Self {
            spec: spec.to_owned(),
            seconds,
        })
    }

    /// The config string, verbatim (used in `interval=<spec>` directory names).
    pub fn spec(&self) -> &str {
        &self.spec
    }

    /// Length of one candle in seconds.
    pub fn seconds(&self) -> u32 {
        self.seconds
    }

    /// Length of one candle in milliseconds.
    pub fn millis(&self) -> i64 {
        i64::from(self.seconds) * 1000
    }
}

/// Seconds in an interval spec ("Rules"), e.g. `1m` → 60, `4h` → 14400, `60` → 60.
pub fn interval_to_seconds(spec: &str) -> Result<u32> {
    let invalid = |why: &str| {
        LakeError::invalid_config(format!(
            "invalid interval {spec:?}: {why}; expected <N>s, <N>m, <N>h, <N>d or bare seconds, e.g. \"1m\" or \"60\""
        ))
    };
    let (digits, multiplier) = match spec.char_indices().last() {
        None => return Err(invalid("it is empty")),
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let multiplier = match c.to_ascii_lowercase() {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86_400,
                _ => return Err(invalid("unknown unit")),
            };
            (&spec[..i], multiplier)
        }
        Some(_) => (spec, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("the count must be a whole number"));
    }
    let count: u64 = digits
        .parse()
        .map_err(|_| invalid("the count is too large"))?;
    if count == 0 {
        return Err(invalid("it must be greater than zero"));
    }
    match count.checked_mul(multiplier) {
        Some(seconds) if seconds <= MAX_INTERVAL_SECONDS => Ok(seconds as u32),
        _ => Err(invalid("it is longer than 2147483647 seconds")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn spec_vectors() {
        let vectors = [
            ("1s", 1),
            ("5s", 5),
            ("60s", 60),
            ("1m", 60),
            ("5m", 300),
            ("15m", 900),
            ("1h", 3600),
            ("4h", 14400),
            ("60", 60),
            ("1d", 86_400),
            ("1M", 60),
            ("2H", 7200),
        ];
        for (spec, seconds) in vectors {
            assert_eq!(interval_to_seconds(spec).unwrap(), seconds, "{spec}");
        }
    }

    #[test]
    fn rejects_bad_specs() {
        for spec in [
            "",
            "0",
            "0m",
            "m",
            "-1m",
            "+1m",
            "1.5m",
            " 1m",
            "1m ",
            "1w",
            "1mm",
            "99999999999999999999s",
            "24856d",
        ] {
            let err = interval_to_seconds(spec).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidConfig, "{spec}");
            assert!(err.message().contains("expected <N>s"), "{spec}: {err}");
        }
    }

    #[test]
    fn keeps_the_spec_verbatim() {
        let interval = Interval::parse("1M").unwrap();
        assert_eq!(interval.spec(), "1M");
        assert_eq!(interval.millis(), 60_000);
    }
}
