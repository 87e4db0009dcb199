//! Keeping the resident set near the live heap, with glibc's allocator (Linux). Every publish
//! builds a new snapshot and exposition, megabytes at 10,000 apps, and frees the last one. Left
//! to its defaults, glibc raises its mmap threshold after the first large buffer is freed, so
//! later ones come from the heap, and a freed heap page goes back to the kernel only when it
//! is at the top of its arena: the resident set grows to twice the live heap and stays there
//! (`docs/performance.md`, "Where the memory goes"). Two settings and a trim after each
//! publish keep it at what is live. Other allocators (Windows' heap, musl's) return freed
//! pages on their own; there both functions do nothing.
//!
//! The only unsafe code on Linux: two calls into the C library with constant arguments.
#![allow(unsafe_code)]

/// Called once at start, before any thread: large buffers (the exposition, the walks) are
/// always mapped on their own and unmapped when freed; at most two arenas for the workers.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt takes any option and value and only changes the allocator's settings;
    // before other threads start, nothing allocates concurrently.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Called after a publish has freed the previous snapshot: gives the freed pages of every
/// arena back to the kernel.
pub fn release_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim is thread-safe (it takes each arena's lock) and frees only memory
    // that no allocation holds.
    unsafe {
        libc::malloc_trim(0);
    }
}
