//! The lake on object storage (`s3://bucket/prefix`): the same keys and bytes as on disk, committed with
//! conditional writes instead of renames (docs/lake-format.md, "Object storage").

pub(crate) mod commit;
pub(crate) mod lease;
pub(crate) mod location;
pub(crate) mod retried;
pub(crate) mod sealed_objects;
pub(crate) mod store;

/// Runs an object-store future from synchronous code on one of the runtime's blocking threads (where the
/// sealed-publish stage and verify run), so the disk and the object-store paths share one synchronous seam.
pub(crate) fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    tokio::runtime::Handle::current().block_on(fut)
}
