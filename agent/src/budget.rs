//! The agent's own resource budget: it watches its RSS and CPU and sheds
//! optional work before it overruns, and takes it back once calm.
//!
//! Optional work, shed in this order and taken back in reverse:
//! 1. detector training (scoring goes on with the models there are);
//! 2. process snapshots (the top-processes table and per-service usage).
//!
//! Usage is the larger of RSS / `agent.budget_rss` and CPU share /
//! `agent.budget_cpu`. At every check over 90% sheds one more thing; below
//! 60% for [`CALM_FOR`] takes one back.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tracing::{info, warn};

const CALM_FOR: Duration = Duration::from_secs(60);

/// What is shed now; read by the parts that do the optional work.
#[derive(Debug, Default)]
pub struct Shed {
    pub training: AtomicBool,
    pub processes: AtomicBool,
}

impl Shed {
    /// Names of what is shed, for the status.
    pub fn names(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.training.load(Ordering::Relaxed) {
            out.push("detector training".to_string());
        }
        if self.processes.load(Ordering::Relaxed) {
            out.push("process snapshots".to_string());
        }
        out
    }
}

#[derive(Debug)]
pub struct Budget {
    pub max_rss: u64,
    /// Share of one core.
    pub max_cpu: f64,
    pub shed: Arc<Shed>,
    level: u8,
    last_cpu: Option<(Instant, f64)>,
    calm_since: Option<Instant>,
    /// The latest measurements, for the status.
    pub rss: u64,
    pub cpu: f64,
}

impl Budget {
    pub fn new(max_rss: u64, max_cpu: f64) -> Self {
        Self {
            max_rss,
            max_cpu,
            shed: Arc::new(Shed::default()),
            level: 0,
            last_cpu: None,
            calm_since: None,
            rss: 0,
            cpu: 0.0,
        }
    }

    /// Takes a measurement: RSS in bytes and the process's CPU seconds so far.
    pub fn check(&mut self, rss: u64, cpu_seconds: f64, now: Instant) {
        let share = match self.last_cpu.replace((now, cpu_seconds)) {
            Some((t, c)) if now > t => (cpu_seconds - c) / now.duration_since(t).as_secs_f64(),
            _ => return,
        };
        (self.rss, self.cpu) = (rss, share);
        let usage = (rss as f64 / self.max_rss as f64).max(share / self.max_cpu);
        if usage > 0.9 {
            self.calm_since = None;
            if self.level < 2 {
                self.level += 1;
                self.apply();
                warn!(
                    rss_mb = rss / 1_000_000,
                    cpu_percent = share * 100.0,
                    shedding = ?self.shed.names(),
                    "over 90% of the agent's resource budget: shedding optional work"
                );
            }
        } else if usage < 0.6 && self.level > 0 {
            let since = *self.calm_since.get_or_insert(now);
            if now.duration_since(since) >= CALM_FOR {
                self.level -= 1;
                self.calm_since = Some(now);
                self.apply();
                info!(shedding = ?self.shed.names(), "back under the resource budget: optional work resumes");
            }
        } else {
            self.calm_since = None;
        }
    }

    fn apply(&self) {
        self.shed.training.store(self.level >= 1, Ordering::Relaxed);
        self.shed
            .processes
            .store(self.level >= 2, Ordering::Relaxed);
    }
}

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

/// This process's RSS (bytes) and CPU time (seconds), read as the agent
/// collector reads them.
pub fn measure() -> Option<(u64, f64)> {
    use crate::collect::agent::{own_cpu_seconds, own_rss_bytes};
    Some((own_rss_bytes()? as u64, own_cpu_seconds()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn over_budget_sheds_training_then_processes_and_takes_them_back_when_calm() {
        let mut b = Budget::new(100 << 20, 0.05);
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        b.check(10 << 20, 0.0, at(0));
        assert!(b.shed.names().is_empty());
        // 2% of a core, 95 MiB: over 90% of the memory budget.
        b.check(95 << 20, 0.1, at(5));
        assert_eq!(b.shed.names(), ["detector training"]);
        b.check(96 << 20, 0.2, at(10));
        assert_eq!(b.shed.names(), ["detector training", "process snapshots"]);
        // CPU alone can be the reason too, and nothing more is left to shed.
        b.check(10 << 20, 1.2, at(15));
        assert_eq!(b.shed.names().len(), 2);
        // Calm for a minute: processes come back first, then training.
        b.check(10 << 20, 1.21, at(20));
        b.check(10 << 20, 1.22, at(79));
        assert_eq!(b.shed.names().len(), 2, "not calm for a minute yet");
        b.check(10 << 20, 1.23, at(80));
        assert_eq!(b.shed.names(), ["detector training"]);
        b.check(10 << 20, 1.24, at(140));
        assert!(b.shed.names().is_empty());
        assert!((b.cpu - 0.01 / 60.0).abs() < 1e-6, "{}", b.cpu);
    }

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
        let (before, _) = measure().unwrap();
        assert!(release_free_memory(), "nothing was released");
        let (after, _) = measure().unwrap();
        assert!(
            after + 32_000_000 < before,
            "RSS {before} bytes before, {after} after: the free blocks stayed"
        );
        assert_eq!(blocks.iter().flatten().count(), 1_024);
    }

    #[test]
    fn this_process_can_be_measured() {
        let (rss, cpu) = measure().unwrap();
        assert!(rss > 1 << 20 && cpu >= 0.0);
    }
}
