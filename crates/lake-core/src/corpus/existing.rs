//! What a re-run finds where it would write a day: nothing, or a sealed manifest that verifies and was made
//! with the same selection (the day is skipped), or one that does not (the day is redone).

use std::path::Path;

use crate::error::Result;
use crate::lake::day_manifest::Selection;
use crate::lake::layout::bucket_of_day_path;
use crate::lake::manifest_reader::{read_manifest, Manifest};
use crate::lake::verify::verify_manifest;

/// Whether the day's manifest `manifest_name` (the day's own or this shard's) exists; if so, whether it is
/// sealed, intact for the selection's buckets and made with the same chain and selection.
pub(crate) fn already_done(
    day_dir: &Path,
    manifest_name: &str,
    chain: &str,
    selection: &Selection,
) -> Result<Option<bool>> {
    let path = day_dir.join(manifest_name);
    if !path.exists() {
        return Ok(None);
    }
    let range = selection.buckets;
    let in_scope = move |rel: &str| bucket_of_day_path(rel).is_some_and(|b| range.contains(b));
    let report = verify_manifest(day_dir, manifest_name, &in_scope)?;
    let same = match read_manifest(&path) {
        Ok((_, Manifest::Day(m))) => m.same_selection(chain, selection),
        _ => false,
    };
    Ok(Some(report.ok() && same))
}

#[cfg(test)]
mod tests {
    use super::*;
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

    #[test]
    fn nothing_there_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            already_done(dir.path(), MANIFEST_FILE, "solana", &all()).unwrap(),
            None
        );
    }

    #[test]
    fn only_an_intact_day_made_the_same_way_is_done() {
        let dir = tempfile::tempdir().unwrap();
        seal_day(dir.path(), all(), false);
        assert_eq!(
            already_done(dir.path(), MANIFEST_FILE, "solana", &all()).unwrap(),
            Some(true)
        );
        std::fs::write(
            dir.path().join("mint_bucket=10/part-0000.parquet"),
            b"damaged",
        )
        .unwrap();
        assert_eq!(
            already_done(dir.path(), MANIFEST_FILE, "solana", &all()).unwrap(),
            Some(false)
        );
    }

    #[test]
    fn another_chain_or_filter_or_a_tampered_seal_is_not_done() {
        let filtered = Selection {
            buckets: BucketRange::ALL,
            mint_filter: Some(MintFilter::of(&["m".to_owned()])),
        };
        let dir = tempfile::tempdir().unwrap();
        seal_day(dir.path(), filtered.clone(), false);
        assert_eq!(
            already_done(dir.path(), MANIFEST_FILE, "solana", &filtered).unwrap(),
            Some(true)
        );
        assert_eq!(
            already_done(dir.path(), MANIFEST_FILE, "solana", &all()).unwrap(),
            Some(false)
        );
        assert_eq!(
            already_done(dir.path(), MANIFEST_FILE, "base", &filtered).unwrap(),
            Some(false)
        );
        let tampered = tempfile::tempdir().unwrap();
        seal_day(tampered.path(), all(), true);
        assert_eq!(
            already_done(tampered.path(), MANIFEST_FILE, "base", &all()).unwrap(),
            Some(false)
        );
    }
}
