//! What a re-run finds where it would write a day: nothing, a sealed manifest that verifies and was made with
//! the same selection (a candidate to skip, if its source has not changed), a damaged one, or one made with
//! another chain or selection (both redone). In an object store one listing tells (sizes, and no object written
//! after the manifest), so a re-run downloads nothing. On disk a re-run first checks sizes only, and re-hashes
//! the files of the days it keeps or rebuilds from ([`confirm_sealed`]); a day exported whole again is never read.

use chrono::NaiveDate;

use super::config::CorpusSettings;
use super::{manifest_name, selection_of};
use crate::error::Result;
use crate::lake::day_manifest::{DayManifest, Selection};
use crate::lake::fingerprint::query_size;
use crate::lake::layout::bucket_of_day_path;
use crate::lake::manifest_reader::{Manifest, ManifestError};
use crate::lake::sealed_files::SealedFiles;
use crate::lake::verify::{check_for_reuse, ReuseCheck};
use crate::source::clickhouse::fingerprint::DaySizes;
use crate::task::blocking::blocking;

/// What an earlier export left for a day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Previous {
    /// No manifest.
    Missing,
    /// Sealed, intact for the selection's buckets, made with the same chain and selection.
    Sealed(Box<DayManifest>),
    /// The manifest or a file it lists does not verify: the first problem.
    Damaged(String),
    /// Intact, but made with another chain or selection.
    OtherSelection,
}

/// What an earlier export left for each day of `settings`, in order, checked to `depth`.
pub(crate) async fn previous_days(
    settings: &CorpusSettings,
    depth: ReuseCheck,
) -> Result<Vec<(NaiveDate, Previous)>> {
    let mut found = Vec::with_capacity(settings.days.len());
    for &day in &settings.days {
        found.push((day, previous_day(settings, day, depth).await?));
    }
    Ok(found)
}

/// What an earlier export left for `day`, checked to `depth`.
async fn previous_day(
    settings: &CorpusSettings,
    day: NaiveDate,
    depth: ReuseCheck,
) -> Result<Previous> {
    let (dir, name, chain, selection) = (
        settings.lake.sealed(&settings.day_rel(day)),
        manifest_name(settings),
        settings.chain.clone(),
        selection_of(settings),
    );
    blocking(move || previous(dir.as_ref(), &name, &chain, &selection, depth)).await
}

/// The sealed days whose freshness the server can tell (those with a fingerprint), and about how many candles
/// the fingerprint query of each counts.
pub(crate) fn fingerprinted(found: &[(NaiveDate, Previous)]) -> (Vec<NaiveDate>, DaySizes) {
    let mut sizes = DaySizes::new();
    let days = found
        .iter()
        .filter_map(|(d, p)| match p {
            Previous::Sealed(m) => {
                let size = query_size(m)?;
                sizes.insert(*d, size);
                Some(*d)
            }
            _ => None,
        })
        .collect();
    (days, sizes)
}

/// The first problem a full check finds in `day`'s sealed files (see [`ReuseCheck::Full`]), for a day a
/// [`ReuseCheck::Sizes`] survey found sealed and that is about to be kept or rebuilt from; `None` when intact.
pub(crate) async fn confirm_sealed(
    settings: &CorpusSettings,
    day: NaiveDate,
) -> Result<Option<String>> {
    if settings.lake.remote.is_some() {
        // In an object store the survey's check was this one already (one listing): not asked again.
        return Ok(None);
    }
    Ok(match previous_day(settings, day, ReuseCheck::Full).await? {
        Previous::Sealed(_) => None,
        Previous::Damaged(what) => Some(what),
        Previous::Missing => Some("the manifest went missing".to_owned()),
        Previous::OtherSelection => Some("the manifest changed".to_owned()),
    })
}

/// Reads the day's manifest `manifest_name` (the day's own or this shard's) and checks it to `depth`.
pub(crate) fn previous(
    day_dir: &dyn SealedFiles,
    manifest_name: &str,
    chain: &str,
    selection: &Selection,
    depth: ReuseCheck,
) -> Result<Previous> {
    let read = match day_dir.read_manifest(manifest_name)? {
        Err(ManifestError::Missing(_)) => return Ok(Previous::Missing),
        read => read,
    };
    let range = selection.buckets;
    let in_scope = move |rel: &str| bucket_of_day_path(rel).is_some_and(|b| range.contains(b));
    let report = check_for_reuse(day_dir, manifest_name, &in_scope, depth)?;
    if let Some(p) = report.problems.first() {
        let path = p.path.as_deref().map_or(String::new(), |p| format!(" {p}"));
        return Ok(Previous::Damaged(format!("{}{path}: {}", p.kind, p.detail)));
    }
    Ok(match read {
        Ok((_, Manifest::Day(m))) if m.same_selection(chain, selection) => {
            Previous::Sealed(Box::new(m))
        }
        _ => Previous::OtherSelection,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    use crate::lake::day_manifest::{DayManifest, MintFilter};
    use crate::lake::hashed_file::write_file;
    use crate::lake::layout::MANIFEST_FILE;
    use crate::lake::manifest::{manifest_bytes, FetchStats, SourceSnapshot, WrittenFile};
    use crate::spec::bucket_range::BucketRange;
    use crate::writer::settings::CompressionKind;
    use crate::writer::tables::alerts_to_parquet;

    fn seal_day(dir: &Path, selection: Selection, tamper: bool) {
        let rel = "mint_bucket=10/part-0000.parquet";
        std::fs::create_dir_all(dir.join("mint_bucket=10")).unwrap();
        let bytes = alerts_to_parquet(&[], CompressionKind::Zstd).unwrap();
        let digest = write_file(&dir.join(rel), &bytes).unwrap();
        let file = WrittenFile {
            rel_path: rel.into(),
            rows: 0,
            bytes: digest.bytes,
            sha256: digest.sha256,
        };
        let m = DayManifest::new(
            "2025-01-01".into(),
            "1m".into(),
            "solana".into(),
            SourceSnapshot::ClickHouse {
                cluster: "h:1".into(),
                database: "d".into(),
                table: "t".into(),
                as_of: "x".into(),
            },
            selection,
        )
        .with_files(vec![file], FetchStats::default(), "now".into());
        let mut json = m.to_sealed_json();
        if tamper {
            json["chain"] = "base".into();
        }
        write_file(&dir.join(MANIFEST_FILE), &manifest_bytes(&json)).unwrap();
    }

    fn all() -> Selection {
        Selection {
            buckets: BucketRange::ALL,
            mint_filter: None,
        }
    }

    fn found(dir: &Path, chain: &str, selection: &Selection) -> Previous {
        found_to(dir, chain, selection, ReuseCheck::Full)
    }

    fn found_to(dir: &Path, chain: &str, selection: &Selection, depth: ReuseCheck) -> Previous {
        let dir = crate::lake::sealed_files::LocalDir::new(dir.to_owned());
        previous(&dir, MANIFEST_FILE, chain, selection, depth).unwrap()
    }

    #[test]
    fn sizes_alone_catch_a_changed_size_a_missing_or_extra_file_and_a_broken_seal_but_not_changed_bytes(
    ) {
        let part = "mint_bucket=10/part-0000.parquet";
        let sizes = |dir: &Path| found_to(dir, "solana", &all(), ReuseCheck::Sizes);
        let dir = tempfile::tempdir().unwrap();
        seal_day(dir.path(), all(), false);
        assert!(matches!(sizes(dir.path()), Previous::Sealed(_)));
        // Same size, other bytes: only the full check reads them.
        let path = dir.path().join(part);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[10] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(sizes(dir.path()), Previous::Sealed(_)));
        let Previous::Damaged(what) = found(dir.path(), "solana", &all()) else {
            panic!("changed bytes are damage to the full check");
        };
        assert!(what.starts_with("hash "), "{what}");
        std::fs::write(dir.path().join("mint_bucket=10/part-0001.parquet"), b"x").unwrap();
        let Previous::Damaged(what) = sizes(dir.path()) else {
            panic!("an extra file is damage");
        };
        assert!(what.starts_with("extra_file "), "{what}");
        std::fs::remove_file(dir.path().join("mint_bucket=10/part-0001.parquet")).unwrap();
        std::fs::write(&path, b"short").unwrap();
        assert!(matches!(sizes(dir.path()), Previous::Damaged(w) if w.starts_with("size ")));
        std::fs::remove_file(&path).unwrap();
        assert!(
            matches!(sizes(dir.path()), Previous::Damaged(w) if w.starts_with("missing_file "))
        );
        let tampered = tempfile::tempdir().unwrap();
        seal_day(tampered.path(), all(), true);
        assert!(matches!(
            found_to(tampered.path(), "base", &all(), ReuseCheck::Sizes),
            Previous::Damaged(w) if w.starts_with("seal ")
        ));
    }

    #[test]
    fn nothing_there_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(found(dir.path(), "solana", &all()), Previous::Missing);
    }

    #[test]
    fn only_an_intact_day_made_the_same_way_is_sealed() {
        let dir = tempfile::tempdir().unwrap();
        seal_day(dir.path(), all(), false);
        assert!(matches!(
            found(dir.path(), "solana", &all()),
            Previous::Sealed(_)
        ));
        std::fs::write(
            dir.path().join("mint_bucket=10/part-0000.parquet"),
            b"damaged",
        )
        .unwrap();
        let Previous::Damaged(what) = found(dir.path(), "solana", &all()) else {
            panic!("a damaged file is damage");
        };
        assert!(
            what.starts_with("size mint_bucket=10/part-0000.parquet: "),
            "{what}"
        );
    }

    #[test]
    fn another_chain_or_filter_is_another_selection_and_a_tampered_seal_is_damage() {
        let filtered = Selection {
            buckets: BucketRange::ALL,
            mint_filter: Some(MintFilter::of(&["m".to_owned()])),
        };
        let dir = tempfile::tempdir().unwrap();
        seal_day(dir.path(), filtered.clone(), false);
        assert!(matches!(
            found(dir.path(), "solana", &filtered),
            Previous::Sealed(_)
        ));
        assert_eq!(
            found(dir.path(), "solana", &all()),
            Previous::OtherSelection
        );
        assert_eq!(
            found(dir.path(), "base", &filtered),
            Previous::OtherSelection
        );
        let tampered = tempfile::tempdir().unwrap();
        seal_day(tampered.path(), all(), true);
        assert!(matches!(
            found(tampered.path(), "base", &all()),
            Previous::Damaged(_)
        ));
    }
}
