//! `verify`: recompute everything a sealed manifest states and report each mismatch.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::error::{LakeError, Result};
use crate::lake::layout::{is_manifest, MANIFEST_FILE};
use crate::lake::manifest::{FileTotals, WrittenFile};
use crate::lake::manifest_reader::{Manifest, ManifestError};
use crate::lake::remote::location::is_remote;
use crate::lake::remote::sealed_objects::RemoteDir;
use crate::lake::seal::{compute_seal, recorded_seal};
use crate::lake::sealed_files::{Inspected, LocalDir, SealedFiles};

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
    let mut report = VerifyReport {
        dir: dir.name(),
        files_checked: 0,
        problems: Vec::new(),
    };
    let (raw, manifest) = match dir.read_manifest(manifest_name) {
        Ok(read) => read,
        Err(ManifestError::Missing(e)) => {
            report
                .problems
                .push(problem("missing_manifest", Some(manifest_name), e));
            return Ok(report);
        }
        Err(ManifestError::Malformed(e)) => {
            report
                .problems
                .push(problem("bad_manifest", Some(manifest_name), e));
            return Ok(report);
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
    let mut listed = BTreeSet::new();
    for entry in manifest.files() {
        check_file(dir, entry, &mut report, &mut listed);
    }
    check_outputs(&manifest, &mut report);
    for rel in dir.list()? {
        if !is_manifest(&rel) && in_scope(&rel) && !listed.contains(&rel) {
            report.problems.push(problem(
                "extra_file",
                Some(&rel),
                "not listed in the manifest",
            ));
        }
    }
    Ok(report)
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
