//! Keeps freed tensor buffers in the process for reuse. A training step allocates and frees
//! hundreds of buffers of megabytes; glibc's malloc serves those with fresh `mmap`s by default,
//! so every step pays for page faults and zeroed pages again (measured: 12% of a CPU step).

/// Raises glibc's mmap and trim thresholds so large blocks come from (and return to) the heap.
/// Idempotent; a no-op on other platforms.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: mallopt only changes allocator parameters; called before the training
            // buffers exist, and harmless at any time.
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20); // glibc's maximum
                libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
            }
        });
    }
}

/// Serves every thread from the main heap (glibc's arenas limited to one), for the training
/// commands: the CPU training step runs on a rayon worker (see train/step.rs), and a worker's own
/// arena unmaps each of its 64 MB heaps as soon as it empties, so every step faulted its pages in
/// again (measured on 2 cores: 390 munmaps in 5 steps, 14% of the time in the kernel; the step
/// 1.09 s -> 1.04 s with one arena). Not for the GUI: curation's parallel parsing and
/// decontamination slow down on one arena (decontamination 0.43 s -> 0.75 s on 300K rows). Must
/// run before any other thread exists; a no-op on other platforms.
pub fn one_heap_for_all_threads() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}
