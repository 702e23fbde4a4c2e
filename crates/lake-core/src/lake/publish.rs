//! Sealed publishing: build in a hidden staging directory beside the final one, fsync, then one rename.
//!
//! Readers only ever see a complete directory or none. A lock file (flock) keeps two exports of the same
//! target apart; the kernel drops it when a process dies, so a crash never leaves a stale lock. Debris of a
//! crashed export (staging or set-aside directories) is cleaned by the next export of the same target.
//!
//! A target in an object store is built the same way on local disk (under the lake's work directory) and
//! published by `lake::remote::commit` under a lease instead of a rename.

use std::collections::BTreeSet;
use std::fs::{self, File, TryLockError};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{ErrorCode, LakeError, Result};
use crate::lake::hashed_file::write_file;
use crate::lake::layout::MANIFEST_FILE;
use crate::lake::manifest::manifest_bytes;
use crate::lake::remote::block_on;
use crate::lake::remote::commit::Commit;
use crate::lake::remote::lease::Lease;
use crate::lake::remote::location::RemoteLake;
use crate::platform::dir_sync;
use crate::platform::exchange::exchange;

const STAGING_PREFIX: &str = ".staging-";

/// An atomic swap of two paths: `platform::exchange`, or a stand-in that fails in tests of the fallback.
type Swap = fn(&Path, &Path) -> std::io::Result<()>;
const ASIDE_PREFIX: &str = ".replaced-";
const LOCK_PREFIX: &str = ".lock-";

/// An exclusive advisory lock on a target, released when dropped or when the process dies.
#[derive(Debug)]
pub struct TargetLock {
    _file: File,
}

impl TargetLock {
    /// Takes the lock without waiting, or `None` when another process (or handle) holds it.
    pub fn try_acquire(path: &Path) -> Result<Option<Self>> {
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| LakeError::io("cannot open lock file", path, &e))?;
        // flock on Unix, LockFileEx on Windows: either way the system drops it when the process dies.
        match file.try_lock() {
            Ok(()) => Ok(Some(Self { _file: file })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(LakeError::io("cannot lock", path, &e)),
        }
    }
}

/// Where one sealed directory lives: `<parent>/<name>`, with its staging, aside and lock names beside it.
#[derive(Debug, Clone)]
pub struct Target {
    parent: PathBuf,
    name: String,
}

impl Target {
    /// The target `<parent>/<name>`.
    pub fn new(parent: &Path, name: &str) -> Self {
        Self {
            parent: parent.to_owned(),
            name: name.to_owned(),
        }
    }

    /// The final directory.
    pub fn final_dir(&self) -> PathBuf {
        self.parent.join(&self.name)
    }

    fn lock_path(&self) -> PathBuf {
        self.parent.join(format!("{LOCK_PREFIX}{}", self.name))
    }

    fn debris(&self, prefix: &str) -> Result<Vec<PathBuf>> {
        let wanted = format!("{prefix}{}.", self.name);
        let mut out = Vec::new();
        let entries = match fs::read_dir(&self.parent) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(LakeError::io("cannot list", &self.parent, &e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| LakeError::io("cannot list", &self.parent, &e))?;
            if entry.file_name().to_string_lossy().starts_with(&wanted) {
                out.push(entry.path());
            }
        }
        out.sort();
        Ok(out)
    }
}

/// A locked staging directory for one target. Dropping it without publishing removes it.
#[derive(Debug)]
pub struct Staging {
    target: Target,
    dir: PathBuf,
    overwrite: bool,
    published: bool,
    remote: Option<Box<RemoteTarget>>,
    _lock: TargetLock,
}

/// Where a staging directory built on local disk is published in an object store, and the lease that
/// makes this export the target's only writer there.
#[derive(Debug)]
struct RemoteTarget {
    lake: RemoteLake,
    rel_dir: String,
    lease: Lease,
    /// Objects already in place that the new directory keeps as they are (a partly refreshed day's).
    kept: BTreeSet<String>,
}

impl RemoteTarget {
    fn commit<'a>(&'a self, local_dir: &'a Path, overwrite: bool) -> Commit<'a> {
        Commit {
            lake: &self.lake,
            rel_dir: &self.rel_dir,
            local_dir,
            manifest_name: MANIFEST_FILE,
            overwrite,
            owns: &|_| true,
            kept: &self.kept,
        }
    }
}

impl Staging {
    /// Locks the target, cleans debris of crashed exports, refuses an existing target unless `overwrite`,
    /// and creates a fresh staging directory.
    pub fn begin(target: Target, overwrite: bool) -> Result<Self> {
        fs::create_dir_all(&target.parent)
            .map_err(|e| LakeError::io("cannot create directory", &target.parent, &e))?;
        let lock = TargetLock::try_acquire(&target.lock_path())?.ok_or_else(|| {
            LakeError::new(
                ErrorCode::RunLocked,
                format!(
                    "{} is being written by another export right now; wait for it to finish or use another run id",
                    target.final_dir().display()
                ),
            )
        })?;
        recover(&target)?;
        sweep_abandoned(&target.parent, &target.name)?;
        let final_dir = target.final_dir();
        if final_dir.exists() && !overwrite {
            return Err(exists_error(&final_dir));
        }
        let dir = target.parent.join(format!(
            "{STAGING_PREFIX}{}.{}",
            target.name,
            std::process::id()
        ));
        if dir.exists() {
            remove_dir(&dir)?;
        }
        fs::create_dir(&dir)
            .map_err(|e| LakeError::io("cannot create staging directory", &dir, &e))?;
        Ok(Self {
            target,
            dir,
            overwrite,
            published: false,
            remote: None,
            _lock: lock,
        })
    }

    /// Like [`Staging::begin`] for a target in an object store, `rel_dir` of `lake`: the directory is built
    /// locally (under the lake's work directory) and uploaded by [`Staging::publish`]. Takes the target's
    /// lease and refuses an existing target unless `overwrite`, before any work is done.
    pub fn begin_remote(
        target: Target,
        overwrite: bool,
        lake: &RemoteLake,
        rel_dir: &str,
    ) -> Result<Self> {
        let mut staging = Self::begin(target, overwrite)?;
        let lease_rel = match rel_dir.rsplit_once('/') {
            Some((parent, name)) => format!("{parent}/{LOCK_PREFIX}{name}"),
            None => format!("{LOCK_PREFIX}{rel_dir}"),
        };
        let lease = block_on(Lease::acquire(lake, &lease_rel, &lake.url(rel_dir)))?;
        let remote = RemoteTarget {
            lake: lake.clone(),
            rel_dir: rel_dir.to_owned(),
            lease,
            kept: BTreeSet::new(),
        };
        block_on(remote.commit(&staging.dir, overwrite).refuse_existing())?;
        staging.remote = Some(Box::new(remote));
        Ok(staging)
    }

    /// The staging directory to write into.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// True when the target is in an object store.
    pub fn is_remote(&self) -> bool {
        self.remote.is_some()
    }

    /// Objects of an object-store target (relative to it) that the published directory keeps as they are, without
    /// a local copy: neither uploaded nor deleted.
    pub fn keep_objects(&mut self, rels: impl IntoIterator<Item = String>) {
        if let Some(remote) = &mut self.remote {
            remote.kept.extend(rels);
        }
    }

    /// fsyncs every directory of the staging tree (files were synced as they were written), then moves it
    /// into place in one rename. An existing target is swapped out atomically and removed afterwards.
    pub fn publish(self) -> Result<PathBuf> {
        self.publish_swapping(exchange)
    }

    /// [`Staging::publish`] with the atomic swap given, so tests can take the fallback on any platform.
    fn publish_swapping(mut self, swap: Swap) -> Result<PathBuf> {
        if let Some(remote) = self.remote.take() {
            let url = block_on(remote.commit(&self.dir, self.overwrite).run(&remote.lease))?;
            block_on(remote.lease.release());
            // The local build is only a staging area: Drop removes it.
            return Ok(PathBuf::from(url));
        }
        sync_tree(&self.dir)?;
        let final_dir = self.target.final_dir();
        if final_dir.exists() {
            if !self.overwrite {
                return Err(exists_error(&final_dir));
            }
            self.replace(&final_dir, swap)?;
        } else {
            fs::rename(&self.dir, &final_dir)
                .map_err(|e| LakeError::io("cannot publish", &final_dir, &e))?;
        }
        self.published = true;
        sync_dir(&self.target.parent)?;
        Ok(final_dir)
    }

    fn replace(&self, final_dir: &Path, swap: Swap) -> Result<()> {
        if swap(&self.dir, final_dir).is_ok() {
            // The old run now sits at the staging path: readers saw old, then new, never a mix or a gap.
            sync_dir(&self.target.parent)?;
            return remove_dir(&self.dir);
        }
        // Platforms and file systems without an atomic exchange (`platform::exchange`): set the old run aside
        // first; `recover` puts it back if we die before the new one is in place. Readers may see no run for
        // the moment between the two renames, never a mix.
        let aside = self.target.parent.join(format!(
            "{ASIDE_PREFIX}{}.{}",
            self.target.name,
            std::process::id()
        ));
        fs::rename(final_dir, &aside)
            .map_err(|e| LakeError::io("cannot move the old run aside", final_dir, &e))?;
        crate::failpoint::hit("publish.set_aside");
        if let Err(e) = fs::rename(&self.dir, final_dir) {
            let _ = fs::rename(&aside, final_dir);
            return Err(LakeError::io("cannot publish", final_dir, &e));
        }
        sync_dir(&self.target.parent)?;
        remove_dir(&aside)
    }
}

/// Writes the sealed manifest into the staging directory, runs `last_check` (a cancelled export stops here),
/// then publishes: the one way a sealed directory appears.
pub fn publish_sealed(
    staging: Staging,
    manifest: &Value,
    last_check: impl FnOnce() -> Result<()>,
) -> Result<PathBuf> {
    write_file(
        &staging.dir().join(MANIFEST_FILE),
        &manifest_bytes(manifest),
    )?;
    last_check()?;
    staging.publish()
}

/// Writes `dir/name` through a temporary file and a rename, so a reader sees the old or the new file only.
pub fn write_atomically(dir: &Path, name: &str, content: &[u8]) -> Result<()> {
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    write_file(&tmp, content)?;
    let path = dir.join(name);
    std::fs::rename(&tmp, &path).map_err(|e| LakeError::io("cannot publish", &path, &e))?;
    sync_dir(dir)
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.published {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

fn exists_error(final_dir: &Path) -> LakeError {
    LakeError::new(
        ErrorCode::RunExists,
        format!(
            "{} already exists; pass overwrite to replace it, or choose another run id",
            final_dir.display()
        ),
    )
}

/// Under the lock: restore a run that a crashed overwrite had set aside, and remove staging debris.
fn recover(target: &Target) -> Result<()> {
    let final_dir = target.final_dir();
    for aside in target.debris(ASIDE_PREFIX)? {
        if final_dir.exists() {
            remove_dir(&aside)?;
        } else {
            fs::rename(&aside, &final_dir)
                .map_err(|e| LakeError::io("cannot restore", &aside, &e))?;
        }
    }
    for staging in target.debris(STAGING_PREFIX)? {
        remove_dir(&staging)?;
    }
    Ok(())
}

/// Recovers other targets of the same parent whose exports died: their debris is cleaned (and any set-aside
/// run restored) when nobody holds their lock.
fn sweep_abandoned(parent: &Path, current: &str) -> Result<()> {
    let entries = match fs::read_dir(parent) {
        Ok(e) => e,
        Err(e) => return Err(LakeError::io("cannot list", parent, &e)),
    };
    let mut names = std::collections::BTreeSet::new();
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let rest = file
            .strip_prefix(STAGING_PREFIX)
            .or_else(|| file.strip_prefix(ASIDE_PREFIX));
        if let Some((name, _pid)) = rest.and_then(|r| r.rsplit_once('.')) {
            if name != current {
                names.insert(name.to_owned());
            }
        }
    }
    for name in names {
        let target = Target::new(parent, &name);
        if let Some(_lock) = TargetLock::try_acquire(&target.lock_path())? {
            recover(&target)?;
        }
    }
    Ok(())
}

fn remove_dir(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LakeError::io("cannot remove", dir, &e)),
    }
}

/// fsyncs a directory so that the names in it survive a power cut.
pub fn sync_dir(dir: &Path) -> Result<()> {
    dir_sync::sync_dir(dir).map_err(|e| LakeError::io("cannot flush directory", dir, &e))
}

fn sync_tree(dir: &Path) -> Result<()> {
    let entries = fs::read_dir(dir).map_err(|e| LakeError::io("cannot list", dir, &e))?;
    for entry in entries {
        let entry = entry.map_err(|e| LakeError::io("cannot list", dir, &e))?;
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            sync_tree(&entry.path())?;
        }
    }
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, content: &str) {
        fs::write(dir.join(name), content).unwrap();
    }

    #[test]
    fn publishes_in_one_step_and_refuses_to_overwrite() {
        let root = tempfile::tempdir().unwrap();
        let target = Target::new(root.path(), "run_id=r1");
        let staging = Staging::begin(target.clone(), false).unwrap();
        write(staging.dir(), "a.txt", "one");
        assert!(
            !target.final_dir().exists(),
            "nothing visible before publish"
        );
        let final_dir = staging.publish().unwrap();
        assert_eq!(fs::read_to_string(final_dir.join("a.txt")).unwrap(), "one");
        let err = Staging::begin(target.clone(), false).unwrap_err();
        assert_eq!(err.code(), ErrorCode::RunExists);
        assert_eq!(
            fs::read_to_string(final_dir.join("a.txt")).unwrap(),
            "one",
            "untouched"
        );
    }

    /// The platform's atomic swap where it has one (Linux, macOS), and the set-aside fallback of platforms and
    /// file systems without it, forced here.
    const SWAPS: [(&str, Swap); 2] = [
        ("platform exchange", exchange),
        ("set-aside fallback", |_, _| {
            Err(std::io::ErrorKind::Unsupported.into())
        }),
    ];

    #[test]
    fn overwrite_swaps_whole_runs() {
        for (how, swap) in SWAPS {
            let root = tempfile::tempdir().unwrap();
            let target = Target::new(root.path(), "run_id=r1");
            let s = Staging::begin(target.clone(), false).unwrap();
            write(s.dir(), "old-only.txt", "old");
            write(s.dir(), "shared.txt", "old");
            s.publish_swapping(swap).unwrap();
            let s = Staging::begin(target.clone(), true).unwrap();
            write(s.dir(), "shared.txt", "new");
            s.publish_swapping(swap).unwrap();
            let final_dir = target.final_dir();
            assert_eq!(
                fs::read_to_string(final_dir.join("shared.txt")).unwrap(),
                "new",
                "{how}"
            );
            assert!(
                !final_dir.join("old-only.txt").exists(),
                "{how}: no half-old, half-new run"
            );
            let names: Vec<String> = fs::read_dir(root.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with(LOCK_PREFIX))
                .collect();
            assert_eq!(names, vec!["run_id=r1".to_owned()], "{how}: no debris left");
        }
    }

    #[test]
    fn dropping_unpublished_staging_removes_it() {
        let root = tempfile::tempdir().unwrap();
        let target = Target::new(root.path(), "run_id=r1");
        let s = Staging::begin(target.clone(), false).unwrap();
        let dir = s.dir().to_owned();
        write(&dir, "x", "y");
        drop(s);
        assert!(!dir.exists());
        assert!(!target.final_dir().exists());
    }

    #[test]
    fn a_second_export_of_the_same_target_is_locked_out() {
        let root = tempfile::tempdir().unwrap();
        let target = Target::new(root.path(), "run_id=r1");
        let first = Staging::begin(target.clone(), false).unwrap();
        let err = Staging::begin(target.clone(), true).unwrap_err();
        assert_eq!(err.code(), ErrorCode::RunLocked);
        drop(first);
        Staging::begin(target, false).unwrap();
    }

    #[test]
    fn debris_of_a_crashed_export_is_cleaned_and_set_aside_runs_restored() {
        let root = tempfile::tempdir().unwrap();
        let target = Target::new(root.path(), "run_id=r1");
        // A crash mid-export: staging left behind; a crash mid-overwrite: the old run set aside, none in place.
        let stale = root.path().join(format!("{STAGING_PREFIX}run_id=r1.99999"));
        fs::create_dir(&stale).unwrap();
        write(&stale, "half", "x");
        let aside = root.path().join(format!("{ASIDE_PREFIX}run_id=r1.99998"));
        fs::create_dir(&aside).unwrap();
        write(&aside, "manifest.json", "{}");
        // A stale lock file from a dead process does not block (flock died with it).
        fs::write(root.path().join(format!("{LOCK_PREFIX}run_id=r1")), "").unwrap();
        let err = Staging::begin(target.clone(), false).unwrap_err();
        assert_eq!(
            err.code(),
            ErrorCode::RunExists,
            "the set-aside run was restored"
        );
        assert!(target.final_dir().join("manifest.json").exists());
        assert!(!stale.exists(), "staging debris removed");
        assert!(!aside.exists());
    }

    #[test]
    fn abandoned_debris_of_other_targets_is_swept_but_live_exports_are_left_alone() {
        let root = tempfile::tempdir().unwrap();
        let dead = root.path().join(format!("{STAGING_PREFIX}run_id=r10.1"));
        fs::create_dir(&dead).unwrap();
        let live = Staging::begin(Target::new(root.path(), "run_id=r20"), false).unwrap();
        Staging::begin(Target::new(root.path(), "run_id=r1"), false).unwrap();
        assert!(!dead.exists(), "nobody held r10's lock: its debris is gone");
        assert!(
            live.dir().exists(),
            "r20 is being exported: its staging stays"
        );
    }
}
