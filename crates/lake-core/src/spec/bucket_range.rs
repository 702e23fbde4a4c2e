//! Bucket ranges for sharding a corpus export: `00-3f` means buckets 0x00 through 0x3f, inclusive.

use crate::error::{LakeError, Result};

/// An inclusive range of mint buckets; on the wire, its label (`00-3f`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct BucketRange {
    /// First bucket.
    pub lo: u8,
    /// Last bucket (inclusive).
    pub hi: u8,
}

impl BucketRange {
    /// Every bucket: what one machine exports.
    pub const ALL: BucketRange = BucketRange { lo: 0, hi: 255 };

    /// Parses `<lo>-<hi>` (two hex digits each, lo ≤ hi) or a single bucket `<bb>`.
    pub fn parse(spec: &str) -> Result<Self> {
        let invalid = || {
            LakeError::invalid_config(format!(
                "invalid buckets {spec:?}: use two-digit hex bounds like \"00-3f\" (inclusive) or one bucket like \"a7\""
            ))
        };
        let hex = |s: &str| -> Result<u8> {
            if s.len() == 2 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
                u8::from_str_radix(s, 16).map_err(|_| invalid())
            } else {
                Err(invalid())
            }
        };
        let (lo, hi) = match spec.split_once('-') {
            Some((a, b)) => (hex(a)?, hex(b)?),
            None => {
                let b = hex(spec)?;
                (b, b)
            }
        };
        if lo > hi {
            return Err(invalid());
        }
        Ok(Self { lo, hi })
    }

    /// True when the bucket lies in the range.
    pub fn contains(&self, bucket: u8) -> bool {
        (self.lo..=self.hi).contains(&bucket)
    }

    /// True for `00-ff`.
    pub fn is_all(&self) -> bool {
        *self == Self::ALL
    }

    /// `lo-hi` in lowercase hex.
    pub fn label(&self) -> String {
        format!("{:02x}-{:02x}", self.lo, self.hi)
    }
}

impl From<BucketRange> for String {
    fn from(range: BucketRange) -> Self {
        range.label()
    }
}

impl TryFrom<String> for BucketRange {
    type Error = String;

    fn try_from(spec: String) -> std::result::Result<Self, String> {
        Self::parse(&spec).map_err(|e| e.message().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        assert_eq!(
            BucketRange::parse("00-3f").unwrap(),
            BucketRange { lo: 0, hi: 0x3f }
        );
        assert_eq!(
            BucketRange::parse("A7").unwrap(),
            BucketRange { lo: 0xa7, hi: 0xa7 }
        );
        assert!(BucketRange::parse("00-ff").unwrap().is_all());
        for bad in ["", "0-3f", "40-3f", "00-100", "zz-ff", "00_3f", "-", "00-"] {
            assert!(BucketRange::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(BucketRange::parse("40-7f").unwrap().label(), "40-7f");
    }
}
