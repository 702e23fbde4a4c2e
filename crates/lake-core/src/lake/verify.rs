//! `verify`: recompute everything a sealed manifest states and report each mismatch.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::error::{LakeError, Result};
use crate::lake::layout::{is_manifest, MANIFEST_FILE};
use crate::lake::manifest::{FileTotals, WrittenFile};
use crate::lake::manifest_reader::{Manifest, ManifestError};
use crate::lake::remote::location::is_remote;
use crate::lake::remote::sealed_objects::RemoteDir;
use crate::lake::seal::{compute_seal, recorded_seal};
use crate::lake::sealed_files::{Inspected, Listed, LocalDir, SealedFiles};

/// One way in which a sealed directory differs from its manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `missing_manifest`, `bad_manifest`, `missing_file`, `extra_file`, `size`, `hash`, `rows`, `seal`, `outputs`.
    pub kind: &'static str,
    /// The file concerned, relative to the directory.
    pub path: Option<String>,
    /// What differs.
    pub detail: String,
}

/// The outcome of a verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// The verified directory.
    pub dir: PathBuf,
    /// Files checked.
    pub files_checked: u64,
    /// Everything that does not match; empty when the directory is intact.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// True when nothing differs.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

fn problem(kind: &'static str, path: Option<&str>, detail: impl Into<String>) -> Problem {
    Problem {
        kind,
        path: path.map(str::to_owned),
        detail: detail.into(),
    }
}

/// Checks a sealed directory (a run or a corpus day) against its `manifest.json`: a local path, or an
/// `s3://…/lake/…` URL.
pub fn verify(dir: &Path) -> Result<VerifyReport> {
    let text = dir.to_string_lossy();
    if is_remote(&text) {
        let remote = RemoteDir::open(&text)?;
        return verify_files(&remote, MANIFEST_FILE, &|_| true);
    }
    verify_manifest(dir, MANIFEST_FILE, &|_| true)
}

/// Checks a directory against the manifest `manifest_name` in it; files outside `in_scope` (paths relative to
/// the directory) are not this manifest's business. Other manifests beside it are never extra files.
pub fn verify_manifest(
    dir: &Path,
    manifest_name: &str,
    in_scope: &dyn Fn(&str) -> bool,
) -> Result<VerifyReport> {
    if !dir.is_dir() {
        return Err(LakeError::invalid_config(format!(
            "{} is not a directory: give the path of a run (…/runs/run_id=<id>) or a corpus day",
            dir.display()
        )));
    }
    verify_files(&LocalDir::new(dir.to_owned()), manifest_name, in_scope)
}

/// [`verify_manifest`] over any sealed directory.
pub(crate) fn verify_files(
    dir: &dyn SealedFiles,
    manifest_name: &str,
    in_scope: &dyn Fn(&str) -> bool,
) -> Result<VerifyReport> {
    let (mut report, manifest) = read_sealed(dir, manifest_name)?;
    let Some(manifest) = manifest else {
        return Ok(report);
    };
    let mut listed = BTreeSet::new();
    for entry in manifest.files() {
        check_file(dir, entry, &mut report, &mut listed);
    }
    check_outputs(&manifest, &mut report);
    extra_files(dir.list()?, &listed, in_scope, &mut report);
    Ok(report)
}

/// How closely [`check_for_reuse`] looks at a directory on disk (an object store is always checked from its
/// listing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReuseCheck {
    /// The seal, and every listed file there with its size: enough to decide what to ask the server, and all a
    /// day that will be exported whole again needs.
    Sizes,
    /// Everything [`verify_files`] recomputes: for a day whose files are kept or rebuilt from.
    Full,
}

/// Checks a sealed directory well enough to reuse it instead of exporting it again. In an object store that
/// is one listing and no bytes read: the seal holds, every listed object is there with its size, and none was
/// written after the manifest (objects are uploaded before it, so a later write is a change). On disk, where
/// reading the files costs no more, [`ReuseCheck::Full`] is the full [`verify_files`] and [`ReuseCheck::Sizes`]
/// the object store's check without write times; `verify` always reads everything.
pub(crate) fn check_for_reuse(
    dir: &dyn SealedFiles,
    manifest_name: &str,
    in_scope: &dyn Fn(&str) -> bool,
    depth: ReuseCheck,
) -> Result<VerifyReport> {
    let objects = match dir.listing()? {
        Some(objects) => objects,
        None if depth == ReuseCheck::Full => return verify_files(dir, manifest_name, in_scope),
        None => dir.sizes()?,
    };
    let (mut report, manifest) = read_sealed(dir, manifest_name)?;
    let Some(manifest) = manifest else {
        return Ok(report);
    };
    let by_rel: BTreeMap<&str, &Listed> = objects.iter().map(|o| (o.rel.as_str(), o)).collect();
    let committed = by_rel.get(manifest_name).and_then(|m| m.written);
    let mut listed = BTreeSet::new();
    for entry in manifest.files() {
        let rel = entry.rel_path.as_str();
        listed.insert(rel.to_owned());
        report.files_checked += 1;
        match by_rel.get(rel) {
            None => report
                .problems
                .push(problem("missing_file", Some(rel), "no such object")),
            Some(o) if o.bytes != entry.bytes => report.problems.push(problem(
                "size",
                Some(rel),
                format!(
                    "manifest says {} bytes, object has {}",
                    entry.bytes, o.bytes
                ),
            )),
            Some(o) if committed.is_some_and(|c| o.written.is_some_and(|w| w > c)) => {
                report.problems.push(problem(
                    "hash",
                    Some(rel),
                    "the object was written after the manifest was committed",
                ))
            }
            Some(_) => {}
        }
    }
    check_outputs(&manifest, &mut report);
    let rels = objects.iter().map(|o| o.rel.clone()).collect();
    extra_files(rels, &listed, in_scope, &mut report);
    Ok(report)
}

/// Starts the report of `dir`: reads the manifest and checks its seal; `None` (with the problem reported)
/// when it cannot be read.
fn read_sealed(
    dir: &dyn SealedFiles,
    manifest_name: &str,
) -> Result<(VerifyReport, Option<Manifest>)> {
    let mut report = VerifyReport {
        dir: dir.name(),
        files_checked: 0,
        problems: Vec::new(),
    };
    let (raw, manifest) = match dir.read_manifest(manifest_name)? {
        Ok(read) => read,
        Err(ManifestError::Missing(e)) => {
            report
                .problems
                .push(problem("missing_manifest", Some(manifest_name), e));
            return Ok((report, None));
        }
        Err(ManifestError::Malformed(e)) => {
            report
                .problems
                .push(problem("bad_manifest", Some(manifest_name), e));
            return Ok((report, None));
        }
    };
    match recorded_seal(&raw) {
        Some(seal) if seal == compute_seal(&raw) => {}
        Some(_) => report.problems.push(problem(
            "seal",
            Some(manifest_name),
            "the manifest was changed after it was sealed",
        )),
        None => report.problems.push(problem(
            "seal",
            Some(manifest_name),
            "the manifest has no seal",
        )),
    }
    Ok((report, Some(manifest)))
}

/// Files a reader sees that the manifest does not list (other manifests and files out of scope aside).
fn extra_files(
    seen: Vec<String>,
    listed: &BTreeSet<String>,
    in_scope: &dyn Fn(&str) -> bool,
    report: &mut VerifyReport,
) {
    for rel in seen {
        if !is_manifest(&rel) && in_scope(&rel) && !listed.contains(&rel) {
            report.problems.push(problem(
                "extra_file",
                Some(&rel),
                "not listed in the manifest",
            ));
        }
    }
}

fn check_file(
    dir: &dyn SealedFiles,
    entry: &WrittenFile,
    report: &mut VerifyReport,
    listed: &mut BTreeSet<String>,
) {
    let rel = entry.rel_path.as_str();
    if rel.split('/').any(|s| s == ".." || s.is_empty()) {
        report.problems.push(problem(
            "bad_manifest",
            Some(rel),
            "the path leaves the directory",
        ));
        return;
    }
    listed.insert(rel.to_owned());
    report.files_checked += 1;
    let Inspected { digest, rows } = match dir.inspect(rel) {
        Ok(found) => found,
        Err(e) => {
            report.problems.push(problem("missing_file", Some(rel), e));
            return;
        }
    };
    if entry.bytes != digest.bytes {
        report.problems.push(problem(
            "size",
            Some(rel),
            format!(
                "manifest says {} bytes, file has {}",
                entry.bytes, digest.bytes
            ),
        ));
    }
    if entry.sha256 != digest.sha256 {
        report.problems.push(problem(
            "hash",
            Some(rel),
            "SHA-256 differs from the manifest",
        ));
    }
    match rows {
        Ok(rows) if rows == entry.rows => {}
        Ok(rows) => report.problems.push(problem(
            "rows",
            Some(rel),
            format!("manifest says {} rows, file has {rows}", entry.rows),
        )),
        Err(e) => report.problems.push(problem(
            "rows",
            Some(rel),
            format!("not readable Parquet: {e}"),
        )),
    }
}

/// The per-output totals must agree with the files listed under each output directory.
fn check_outputs(manifest: &Manifest, report: &mut VerifyReport) {
    for (prefix, stated) in manifest.outputs() {
        let under: Vec<WrittenFile> = manifest
            .files()
            .iter()
            .filter(|f| prefix.is_empty() || f.rel_path.starts_with(&format!("{prefix}/")))
            .cloned()
            .collect();
        let totals = FileTotals::of(&under);
        if stated.files != totals.files || stated.rows != totals.rows {
            report.problems.push(problem(
                "outputs",
                Some(prefix),
                format!(
                    "totals differ from the listed files ({} files, {} rows)",
                    totals.files, totals.rows
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::day_manifest::{DayManifest, Selection};
    use crate::lake::manifest::{FetchStats, SourceSnapshot};
    use crate::lake::manifest_reader::parse_manifest;
    use crate::spec::bucket_range::BucketRange;
    use chrono::{DateTime, Utc};

    /// An object store as far as the reuse check sees it: a manifest and a listing; reading bytes is a bug.
    struct Listing {
        manifest: Vec<u8>,
        objects: Vec<(String, u64, i64)>,
    }

    impl SealedFiles for Listing {
        fn name(&self) -> PathBuf {
            PathBuf::from("s3://b/lake/corpus/day")
        }
        fn read_manifest(&self, _: &str) -> Result<crate::lake::sealed_files::ManifestRead> {
            Ok(parse_manifest(&self.manifest))
        }
        fn inspect(&self, rel: &str) -> std::result::Result<Inspected, String> {
            panic!("the reuse check read the bytes of {rel}")
        }
        fn list(&self) -> Result<Vec<String>> {
            Ok(self.objects.iter().map(|o| o.0.clone()).collect())
        }
        fn listing(&self) -> Result<Option<Vec<Listed>>> {
            let at = |s: i64| DateTime::<Utc>::from_timestamp(s, 0).unwrap();
            Ok(Some(
                self.objects
                    .iter()
                    .map(|(rel, bytes, t)| Listed {
                        rel: rel.clone(),
                        bytes: *bytes,
                        written: Some(at(*t)),
                    })
                    .collect(),
            ))
        }
    }

    fn sealed(files: &[(&str, u64)]) -> Vec<u8> {
        let written = files
            .iter()
            .map(|(rel, bytes)| WrittenFile {
                rel_path: (*rel).into(),
                rows: 1,
                bytes: *bytes,
                sha256: "0".repeat(64),
            })
            .collect();
        let m = DayManifest::new(
            "2025-01-01".into(),
            "1m".into(),
            "solana".into(),
            SourceSnapshot::Corpus {
                path: "x".into(),
                days: vec![],
            },
            Selection {
                buckets: BucketRange::ALL,
                mint_filter: None,
            },
        )
        .with_files(written, FetchStats::default(), "now".into());
        crate::lake::manifest::manifest_bytes(&m.to_sealed_json())
    }

    fn kinds(objects: Vec<(&str, u64, i64)>) -> Vec<(String, String)> {
        let dir = Listing {
            manifest: sealed(&[
                ("mint_bucket=00/part-0000.parquet", 10),
                ("mint_bucket=01/part-0000.parquet", 20),
            ]),
            objects: objects
                .into_iter()
                .map(|(r, b, t)| (r.to_owned(), b, t))
                .collect(),
        };
        let report = check_for_reuse(&dir, MANIFEST_FILE, &|_| true, ReuseCheck::Full).unwrap();
        report
            .problems
            .into_iter()
            .map(|p| (p.kind.to_owned(), p.path.unwrap_or_default()))
            .collect()
    }

    #[test]
    fn an_object_store_directory_is_checked_from_one_listing() {
        let m = (MANIFEST_FILE, 0, 100);
        let a = ("mint_bucket=00/part-0000.parquet", 10, 99);
        let b = ("mint_bucket=01/part-0000.parquet", 20, 100);
        assert_eq!(
            kinds(vec![m, a, b]),
            vec![],
            "intact: sizes match, nothing newer"
        );
        let late = ("mint_bucket=01/part-0000.parquet", 20, 101);
        assert_eq!(
            kinds(vec![m, a, late]),
            vec![("hash".into(), late.0.into())]
        );
        let short = ("mint_bucket=01/part-0000.parquet", 19, 99);
        assert_eq!(
            kinds(vec![m, a, short]),
            vec![("size".into(), short.0.into())]
        );
        assert_eq!(kinds(vec![m, a]), vec![("missing_file".into(), b.0.into())]);
        let extra = ("mint_bucket=02/part-0000.parquet", 5, 99);
        assert_eq!(
            kinds(vec![m, a, b, extra]),
            vec![("extra_file".into(), extra.0.into())]
        );
    }
}
