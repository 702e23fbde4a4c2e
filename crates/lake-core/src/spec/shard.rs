//! One of N machines of a corpus export: `shard` `K/N` names the K-th (from 0) of N near-equal bucket ranges,
//! and `shards` `N` alone takes K from the batch engine that started the process, so that a Kubernetes Indexed
//! Job or an AWS Batch array job of N is the whole scale-out (README, "Many machines").

use crate::error::{LakeError, Result};
use crate::spec::bucket_range::BucketRange;

/// Where a process started as one of N learns which one it is, by engine.
pub const INDEX_VARIABLES: [&str; 2] = ["JOB_COMPLETION_INDEX", "AWS_BATCH_JOB_ARRAY_INDEX"];

/// The most shards: one bucket each.
const MAX_SHARDS: u32 = 256;

/// The K-th (from 0) of `n` near-equal ranges covering `00`–`ff`: shard k starts at bucket `k*256/n`.
pub fn shard_range(k: u32, n: u32) -> Result<BucketRange> {
    if n == 0 || n > MAX_SHARDS {
        return Err(LakeError::invalid_config(format!(
            "invalid shard count {n}: give 1 to {MAX_SHARDS} shards (there are 256 buckets)"
        )));
    }
    if k >= n {
        return Err(LakeError::invalid_config(format!(
            "invalid shard {k}/{n}: shards count from 0, as JOB_COMPLETION_INDEX and AWS_BATCH_JOB_ARRAY_INDEX do, so give 0 to {}",
            n - 1
        )));
    }
    let start = |i: u32| (i * 256 / n) as u8;
    let hi = if k + 1 == n { 255 } else { start(k + 1) - 1 };
    Ok(BucketRange { lo: start(k), hi })
}

/// Parses `K/N` (`0/4` … `3/4`).
pub fn parse_shard(spec: &str) -> Result<BucketRange> {
    let invalid = || {
        LakeError::invalid_config(format!(
            "invalid shard {spec:?}: write K/N, the K-th (from 0) of N shards, e.g. 0/4"
        ))
    };
    let (k, n) = spec.split_once('/').ok_or_else(invalid)?;
    let number = |s: &str| s.trim().parse::<u32>().map_err(|_| invalid());
    shard_range(number(k)?, number(n)?)
}

/// The K-th of `n` shards, K read from the environment `lookup` gives (the process's own in production).
pub fn shard_from_env(n: u32, lookup: impl Fn(&str) -> Option<String>) -> Result<BucketRange> {
    // A bad count is reported as such, whatever the environment says.
    shard_range(0, n)?;
    let mut found: Option<(&str, u32)> = None;
    for name in INDEX_VARIABLES {
        let Some(text) = lookup(name) else { continue };
        let k = text.trim().parse::<u32>().map_err(|_| {
            LakeError::invalid_config(format!(
                "{name} is {text:?}: expected a whole number, this process's index among the {n} shards"
            ))
        })?;
        match found {
            Some((other, j)) if j != k => {
                return Err(LakeError::invalid_config(format!(
                    "{other} ({j}) and {name} ({k}) disagree about which shard this process is: unset one, or give shard K/{n}"
                )));
            }
            _ => found = Some((name, k)),
        }
    }
    let Some((_, k)) = found else {
        return Err(LakeError::invalid_config(format!(
            "shards {n} needs this process's index: run it as a Kubernetes Indexed Job (JOB_COMPLETION_INDEX) or an AWS Batch array job (AWS_BATCH_JOB_ARRAY_INDEX), or give shard K/{n} (--shard K/{n})"
        )));
    };
    shard_range(k, n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn n_shards_cover_every_bucket_once_in_near_equal_ranges() {
        for n in 1..=256 {
            let ranges: Vec<BucketRange> = (0..n).map(|k| shard_range(k, n).unwrap()).collect();
            assert_eq!(ranges[0].lo, 0);
            assert_eq!(ranges.last().unwrap().hi, 255);
            for pair in ranges.windows(2) {
                assert_eq!(u32::from(pair[0].hi) + 1, u32::from(pair[1].lo), "n={n}");
            }
            let sizes: Vec<u32> = ranges
                .iter()
                .map(|r| u32::from(r.hi) - u32::from(r.lo) + 1)
                .collect();
            let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
            assert!(max - min <= 1, "n={n}: {sizes:?}");
        }
        assert_eq!(parse_shard("1/4").unwrap().label(), "40-7f");
        assert_eq!(parse_shard("2/3").unwrap().label(), "aa-ff");
        assert!(parse_shard("0/1").unwrap().is_all());
    }

    #[test]
    fn bad_shards_say_how_to_count() {
        for bad in ["4/4", "0/0", "1/257", "x/4", "1-4", "", "-1/4"] {
            let err = parse_shard(bad).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidConfig, "{bad}");
        }
        assert!(parse_shard("4/4")
            .unwrap_err()
            .message()
            .contains("count from 0"));
    }

    #[test]
    fn the_index_comes_from_the_batch_engine() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let err = shard_from_env(0, env(&[])).unwrap_err();
        assert!(err.message().contains("shard count"), "{err}");
        let k8s = shard_from_env(4, env(&[("JOB_COMPLETION_INDEX", "2")])).unwrap();
        assert_eq!(k8s.label(), "80-bf");
        let batch = shard_from_env(4, env(&[("AWS_BATCH_JOB_ARRAY_INDEX", "3")])).unwrap();
        assert_eq!(batch.label(), "c0-ff");
        let both = env(&[
            ("JOB_COMPLETION_INDEX", "1"),
            ("AWS_BATCH_JOB_ARRAY_INDEX", "1"),
        ]);
        assert_eq!(shard_from_env(4, both).unwrap().label(), "40-7f");
        for (pairs, says) in [
            (&[][..], "Indexed Job"),
            (&[("JOB_COMPLETION_INDEX", "x")][..], "whole number"),
            (&[("JOB_COMPLETION_INDEX", "4")][..], "count from 0"),
            (
                &[
                    ("JOB_COMPLETION_INDEX", "1"),
                    ("AWS_BATCH_JOB_ARRAY_INDEX", "2"),
                ][..],
                "disagree",
            ),
        ] {
            let err = shard_from_env(4, env(pairs)).unwrap_err();
            assert!(err.message().contains(says), "{pairs:?}: {err}");
        }
    }
}
