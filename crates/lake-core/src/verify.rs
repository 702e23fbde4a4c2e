//! `verify`: recompute everything a sealed manifest states and report each mismatch.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};

use parquet::file::reader::{FileReader, SerializedFileReader};
use serde_json::Value;

use crate::error::{LakeError, Result};
use crate::hashing_writer::digest_file;
use crate::manifest::MANIFEST_FILE;
use crate::seal::{compute_seal, recorded_seal};

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

/// Checks a sealed directory (a run or a corpus day) against its `manifest.json`.
pub fn verify(dir: &Path) -> Result<VerifyReport> {
    verify_manifest(dir, MANIFEST_FILE, &|_| true)
}

/// Checks a directory against the manifest `manifest_name` in it; files outside `in_scope` (paths relative to
/// the directory) are not this manifest's business. Other manifests beside it are never extra files.
pub fn verify_manifest(
    dir: &Path,
    manifest_name: &str,
    in_scope: &dyn Fn(&str) -> bool,
) -> Result<VerifyReport> {
    let mut report = VerifyReport {
        dir: dir.to_owned(),
        files_checked: 0,
        problems: Vec::new(),
    };
    if !dir.is_dir() {
        return Err(LakeError::invalid_config(format!(
            "{} is not a directory: give the path of a run (…/runs/run_id=<id>) or a corpus day",
            dir.display()
        )));
    }
    let manifest_path = dir.join(manifest_name);
    let text = match std::fs::read_to_string(&manifest_path) {
        Ok(t) => t,
        Err(e) => {
            report.problems.push(problem(
                "missing_manifest",
                Some(MANIFEST_FILE),
                e.to_string(),
            ));
            return Ok(report);
        }
    };
    let manifest: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            report
                .problems
                .push(problem("bad_manifest", Some(MANIFEST_FILE), e.to_string()));
            return Ok(report);
        }
    };
    match recorded_seal(&manifest) {
        Some(seal) if seal == compute_seal(&manifest) => {}
        Some(_) => report.problems.push(problem(
            "seal",
            Some(MANIFEST_FILE),
            "the manifest was changed after it was sealed",
        )),
        None => report.problems.push(problem(
            "seal",
            Some(MANIFEST_FILE),
            "the manifest has no seal",
        )),
    }
    let Some(files) = manifest.get("files").and_then(Value::as_array) else {
        report.problems.push(problem(
            "bad_manifest",
            Some(MANIFEST_FILE),
            "no \"files\" list",
        ));
        return Ok(report);
    };
    let mut listed = BTreeSet::new();
    for entry in files {
        check_file(dir, entry, &mut report, &mut listed);
    }
    check_outputs(&manifest, files, &mut report);
    let mut on_disk = Vec::new();
    list_files(dir, dir, &mut on_disk).map_err(|e| LakeError::io("cannot list", dir, &e))?;
    for rel in on_disk {
        let is_manifest =
            !rel.contains('/') && rel.starts_with("manifest") && rel.ends_with(".json");
        if !is_manifest && in_scope(&rel) && !listed.contains(&rel) {
            report.problems.push(problem(
                "extra_file",
                Some(&rel),
                "not listed in the manifest",
            ));
        }
    }
    Ok(report)
}

fn check_file(dir: &Path, entry: &Value, report: &mut VerifyReport, listed: &mut BTreeSet<String>) {
    let Some(rel) = entry.get("path").and_then(Value::as_str) else {
        report
            .problems
            .push(problem("bad_manifest", None, "a file entry has no path"));
        return;
    };
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
    let path = dir.join(rel);
    let digest = match digest_file(&path) {
        Ok(d) => d,
        Err(e) => {
            report
                .problems
                .push(problem("missing_file", Some(rel), e.to_string()));
            return;
        }
    };
    let want_bytes = entry.get("bytes").and_then(Value::as_u64);
    if want_bytes != Some(digest.bytes) {
        report.problems.push(problem(
            "size",
            Some(rel),
            format!(
                "manifest says {want_bytes:?} bytes, file has {}",
                digest.bytes
            ),
        ));
    }
    if entry.get("sha256").and_then(Value::as_str) != Some(digest.sha256.as_str()) {
        report.problems.push(problem(
            "hash",
            Some(rel),
            "SHA-256 differs from the manifest",
        ));
    }
    let want_rows = entry.get("rows").and_then(Value::as_u64);
    match parquet_rows(&path) {
        Ok(rows) if Some(rows) == want_rows => {}
        Ok(rows) => report.problems.push(problem(
            "rows",
            Some(rel),
            format!("manifest says {want_rows:?} rows, file has {rows}"),
        )),
        Err(e) => report.problems.push(problem(
            "rows",
            Some(rel),
            format!("not readable Parquet: {e}"),
        )),
    }
}

/// The per-output totals must agree with the files listed under each output directory.
fn check_outputs(manifest: &Value, files: &[Value], report: &mut VerifyReport) {
    let Some(outputs) = manifest.get("outputs").and_then(Value::as_object) else {
        return;
    };
    // A corpus day states its totals directly; a run states them per output directory.
    let per_prefix: Vec<(String, &Value)> = if outputs.get("rows").is_some_and(Value::is_u64) {
        vec![(
            String::new(),
            manifest.get("outputs").expect("checked above"),
        )]
    } else {
        outputs.iter().map(|(k, v)| (k.clone(), v)).collect()
    };
    for (prefix, stated) in per_prefix {
        let under: Vec<&Value> = files
            .iter()
            .filter(|f| {
                f.get("path")
                    .and_then(Value::as_str)
                    .is_some_and(|p| prefix.is_empty() || p.starts_with(&format!("{prefix}/")))
            })
            .collect();
        let rows: u64 = under
            .iter()
            .filter_map(|f| f.get("rows").and_then(Value::as_u64))
            .sum();
        if stated.get("files").and_then(Value::as_u64) != Some(under.len() as u64)
            || stated.get("rows").and_then(Value::as_u64) != Some(rows)
        {
            report.problems.push(problem(
                "outputs",
                Some(&prefix),
                format!(
                    "totals differ from the listed files ({} files, {rows} rows)",
                    under.len()
                ),
            ));
        }
    }
}

fn parquet_rows(path: &Path) -> std::result::Result<u64, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let reader = SerializedFileReader::new(file).map_err(|e| e.to_string())?;
    u64::try_from(reader.metadata().file_metadata().num_rows()).map_err(|e| e.to_string())
}

fn list_files(root: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        // Hidden entries (locks, staging, temp files) are the exporter's internals; Parquet readers skip them too.
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            list_files(root, &path, out)?;
        } else {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}
