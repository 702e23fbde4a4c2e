//! Keeping the allocator's footprint small while the bucket writers run.
//!
//! glibc's malloc gives each thread that allocates a heap (an arena) of its own, up to eight per core, and keeps
//! freed pages in them. The exporter's threads (the fetch, the bucket writers, a batch's parked days written while
//! the next batch streams) each fragment theirs with their churn of page buffers. Two remedies, both measured on a
//! 100M-row corpus export (BENCHMARKS.md, "Exact pages and two heaps"): trimming the heaps as row groups close
//! (268 MiB without, 241 with, before parked days were written during the next read), and capping the heaps at two
//! (285-364 MiB without, 225-295 with, at the same speed; 225 with `MALLOC_ARENA_MAX=2` set before Node starts,
//! which also caps the heaps Node's own threads made first). musl's and macOS's allocators return memory on their
//! own and have neither knob; there both are no-ops.

/// Heaps glibc's malloc may keep: one per core of the exporter's two-thread design.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENAS: libc::c_int = 2;

/// Caps glibc's malloc at [`ARENAS`] heaps, once per process, before the first bucket writer starts. The cap is
/// process-wide, like `MALLOC_ARENA_MAX`, which wins when the user has set it; heaps made before stay in use.
pub(crate) fn limit_heaps() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
                // SAFETY: mallopt changes a malloc tunable; glibc applies M_ARENA_MAX to heaps made later.
                unsafe {
                    libc::mallopt(libc::M_ARENA_MAX, ARENAS);
                }
            }
        });
    }
}

/// Releases free heap memory to the system where the allocator needs to be asked.
pub(crate) fn release_free_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of the allocator's own arenas.
    unsafe {
        libc::malloc_trim(0);
    }
}
