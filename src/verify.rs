//! `verifyLakeDir`: recompute a sealed run's (or corpus day's) hashes, sizes, row counts and seal.

use napi::bindgen_prelude::PromiseRaw;
use napi::Env;
use napi_derive::napi;

use crate::js_error::run_async;

/// One mismatch between a sealed directory and its manifest.
#[napi(object)]
pub struct LakeVerifyProblem {
    /// `missing_manifest`, `bad_manifest`, `missing_file`, `extra_file`, `size`, `hash`, `rows`, `seal` or `outputs`.
    pub kind: String,
    /// The file concerned, relative to the directory.
    pub path: Option<String>,
    /// What differs.
    pub detail: String,
}

/// The outcome of `verifyLakeDir`.
#[napi(object)]
pub struct LakeVerifyReport {
    /// The verified directory.
    pub dir: String,
    /// True when nothing differs.
    pub ok: bool,
    /// Files whose size, hash and rows were recomputed.
    #[napi(js_name = "files_checked")]
    pub files_checked: u32,
    /// Every mismatch; empty when `ok`.
    pub problems: Vec<LakeVerifyProblem>,
}

/// Verifies a sealed run directory (`…/runs/run_id=<id>`) or corpus day against its manifest. Resolves with a
/// report (a damaged run is a report with `ok: false`, not an error); rejects with `INVALID_CONFIG` when the
/// path is not a directory.
#[napi(ts_return_type = "Promise<LakeVerifyReport>")]
pub fn verify_lake_dir(env: &Env, dir: String) -> napi::Result<PromiseRaw<'_, LakeVerifyReport>> {
    run_async(
        env,
        async move { lake_core::blocking(move || lake_core::verify(std::path::Path::new(&dir))).await },
        |report| {
            Ok(LakeVerifyReport {
                dir: report.dir.to_string_lossy().into_owned(),
                ok: report.ok(),
                files_checked: report.files_checked as u32,
                problems: report
                    .problems
                    .into_iter()
                    .map(|p| LakeVerifyProblem {
                        kind: p.kind.to_owned(),
                        path: p.path,
                        detail: p.detail,
                    })
                    .collect(),
            })
        },
    )
}
