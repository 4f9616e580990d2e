//! The agent's memory allocator: glibc set up for a long-running process,
//! the global allocator that commits sled's I/O buffer when it is
//! allocated, and handing free pages back to the system.
//!
//! Owns: every call into the allocator. Must not: decide when to shed work
//! (that is [`crate::budget`]).

use std::alloc::{GlobalAlloc, Layout, System};

/// Hands the allocator's free pages back to the system; returns whether it
/// released any.
///
/// glibc keeps what the agent frees inside its arenas and gives back only
/// the top of each: steady work (trainings, seals, model saves, each
/// freeing what it allocated) leaves free pages scattered below the top.
/// The health loop calls this once a minute; side by side under the soak's
/// load it kept RSS about 0.9 MB (4%) lower after 90 minutes.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn release_free_memory() -> bool {
    // SAFETY: malloc_trim takes no pointer and touches only the allocator's
    // own free chunks, under each arena's lock: any thread may call it.
    unsafe { libc::malloc_trim(0) == 1 }
}

/// Other allocators return free pages themselves: nothing to do.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_free_memory() -> bool {
    false
}

/// Large buffers at or above this size get pages of their own, handed back
/// to the system when freed (see [`tune_allocator`]).
pub const MMAP_THRESHOLD: usize = 64 * 1024;

/// Sets glibc's allocator up for a long-running agent; call it first thing,
/// before any thread starts. Returns the settings it made.
///
/// - One arena: every thread allocates from the same heap, so what one
///   thread frees another reuses, and [`release_free_memory`] has one heap
///   to trim instead of the several glibc opens for the threads of a busy
///   moment, each keeping its own free memory.
/// - A fixed [`MMAP_THRESHOLD`]: glibc otherwise raises the threshold to the
///   size of each large buffer freed, after which the seal's, export's and
///   training's large buffers come from the heap, and the long-lived
///   allocations made meanwhile land among them and pin their pages.
///
/// A setting the operator made in the environment (`MALLOC_ARENA_MAX`,
/// `MALLOC_MMAP_THRESHOLD_`, or `GLIBC_TUNABLES`) is left as it is.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn tune_allocator() -> Vec<&'static str> {
    let set_by_operator = |name: &str| {
        std::env::var_os(name).is_some() || std::env::var_os("GLIBC_TUNABLES").is_some()
    };
    let mut made = Vec::new();
    let threshold = libc::c_int::try_from(MMAP_THRESHOLD).unwrap_or(libc::c_int::MAX);
    for (env, param, value, name) in [
        ("MALLOC_ARENA_MAX", libc::M_ARENA_MAX, 1, "arena_max=1"),
        (
            "MALLOC_MMAP_THRESHOLD_",
            libc::M_MMAP_THRESHOLD,
            threshold,
            "mmap_threshold=64KiB",
        ),
    ] {
        // SAFETY: mallopt takes two integers and changes the allocator's
        // parameters under its own lock; it returns 1 on success.
        if !set_by_operator(env) && unsafe { libc::mallopt(param, value) } == 1 {
            made.push(name);
        }
    }
    made
}

/// Other allocators have their own settings: nothing to do.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn tune_allocator() -> Vec<&'static str> {
    Vec::new()
}

/// The agent's global allocator (set in `ward-agent` and `ward`): the
/// system's, except that a large page-aligned buffer is committed (every
/// page touched) when it is allocated.
///
/// The only such buffer the agent has is sled's I/O buffer, one 512 KiB
/// segment of its log, which sled fills as it logs its writes and frees for
/// a fresh one when the segment is full. With [`tune_allocator`]'s
/// threshold the buffer has pages of its own, resident as they are first
/// written: left alone, the agent's RSS climbed about 0.5 MB over each
/// segment (some 11 minutes under the soak's load) and dropped back, a
/// sawtooth of 3% that looks like a leak on a dashboard and that the
/// budget would read as growth. Committed up front, the buffer counts for
/// its whole size from the start, as it would at its fullest: the peak is
/// the same, and the RSS is steady.
#[derive(Debug)]
pub struct Allocator;

/// Large buffers with at least this alignment are committed when allocated.
const COMMIT_ALIGN: usize = 4096;

/// Touches every page of `ptr`, just allocated with `layout`, if it is a
/// large page-aligned block; returns `ptr`.
///
/// # Safety
/// `ptr` is null or a block of `layout` that no one else uses yet.
#[allow(unsafe_code)]
unsafe fn commit(ptr: *mut u8, layout: Layout) -> *mut u8 {
    if !ptr.is_null() && layout.align() >= COMMIT_ALIGN && layout.size() >= MMAP_THRESHOLD {
        for offset in (0..layout.size()).step_by(COMMIT_ALIGN) {
            // SAFETY: offset < layout.size(), inside the block just
            // allocated and owned by no one else yet; volatile, so the write
            // is made even though nothing reads it (a zero, which leaves a
            // zeroed block zeroed).
            unsafe { ptr.add(offset).write_volatile(0) };
        }
    }
    ptr
}

#[allow(unsafe_code)]
// SAFETY: every call goes to the system allocator with the caller's own
// arguments; `alloc` only writes inside the block it got back.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's layout, as GlobalAlloc::alloc requires.
        unsafe { commit(System.alloc(layout), layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's layout; writing zeros keeps the block zeroed.
        unsafe { commit(System.alloc_zeroed(layout), layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the block came from System (through `alloc`) with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's block, layout and size, as System requires.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::own_rss_bytes;

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn freed_memory_scattered_in_the_heap_goes_back_to_the_system() {
        // 64 MB in 4 KiB blocks, then all but every 16th freed: 60 MB free
        // in runs between the kept blocks, below the top of the heap,
        // which free() alone keeps.
        let mut blocks: Vec<Option<Vec<u8>>> =
            (0..16_384).map(|i| Some(vec![i as u8; 4096])).collect();
        for (i, b) in blocks.iter_mut().enumerate() {
            if i % 16 != 0 {
                *b = None;
            }
        }
        let before = own_rss_bytes().unwrap() as u64;
        assert!(release_free_memory(), "nothing was released");
        let after = own_rss_bytes().unwrap() as u64;
        assert!(
            after + 32_000_000 < before,
            "RSS {before} bytes before, {after} after: the free blocks stayed"
        );
        assert_eq!(blocks.iter().flatten().count(), 1_024);
    }
}
