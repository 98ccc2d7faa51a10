//! Process-wide allocator settings, applied once by `main` before any thread starts.
//!
//! Password hashing (Argon2id, a 19 MiB block per hash) runs on tokio's blocking threads. With
//! glibc's default, freeing an mmapped block raises the mmap threshold to its size, so later
//! blocks are carved from the hashing thread's arena instead, and an arena keeps what it was
//! given. A 20-minute soak with five logins a second grew from 80 MiB to 674 MiB that way, the
//! memory sitting in 14 arenas in multiples of 19 MiB. A fixed threshold keeps every large
//! block mmapped, so it returns to the system when the hash is done.

/// Blocks at least this large are mmapped and unmapped on free (glibc's default start value;
/// setting it turns the dynamic adjustment off).
const MMAP_THRESHOLD: i32 = 128 * 1024;

/// Pins glibc's mmap threshold (no-op on other C libraries).
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only changes glibc's allocation policy; it is called once, at start,
    // before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}
