//! The agent's allocator settings (`allocator::tune_allocator`) and its global
//! allocator (`allocator::Allocator`), in a test process of their own and on
//! its main thread, where the agent makes the settings before any other
//! thread starts: they apply to the whole process.

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod glibc {
    /// Bytes glibc holds in buffers that have pages of their own.
    #[allow(unsafe_code)]
    fn mapped_bytes() -> usize {
        // SAFETY: mallinfo2 takes nothing and returns a plain struct.
        unsafe { libc::mallinfo2() }.hblkhd
    }

    /// With the heap trimmed (no free space to take it from), allocates and
    /// fills a buffer of `len` bytes; returns how many more bytes glibc held
    /// in buffers of their own while it was held, and after it was freed.
    fn mapped_while_held_and_after(len: usize) -> (usize, usize) {
        ward_agent::allocator::release_free_memory();
        let before = mapped_bytes();
        let buf = std::hint::black_box(vec![7u8; len]);
        let during = mapped_bytes().saturating_sub(before);
        drop(buf);
        (during, mapped_bytes().saturating_sub(before))
    }

    pub fn a_large_buffer_gets_pages_of_its_own_once_tuned_and_gives_them_back() {
        const LEN: usize = 96 * 1024;
        // glibc's own threshold (128 KiB, raised after each large free): the
        // buffer grows the heap, where its pages stay after it is freed.
        assert_eq!(mapped_while_held_and_after(LEN), (0, 0), "untuned");

        let made = ward_agent::allocator::tune_allocator();
        assert_eq!(made, ["arena_max=1", "mmap_threshold=64KiB"]);
        let (during, after) = mapped_while_held_and_after(LEN);
        assert!(
            during >= LEN,
            "only {during} bytes mapped for a {LEN}-byte buffer"
        );
        assert_eq!(after, 0, "the buffer's pages were kept after it was freed");

        println!("test a_large_buffer_gets_pages_of_its_own_once_tuned_and_gives_them_back ... ok");
    }

    /// How many of the pages of `len` bytes at `ptr` (page-aligned) are
    /// resident.
    #[allow(unsafe_code)]
    fn resident_pages(ptr: *mut u8, len: usize) -> usize {
        let mut pages = vec![0u8; len.div_ceil(4096)];
        // SAFETY: `ptr` is page-aligned and the `len` bytes after it are
        // one live allocation; `pages` has a byte for each of its pages.
        let rc = unsafe { libc::mincore(ptr.cast(), len, pages.as_mut_ptr()) };
        assert_eq!(rc, 0, "mincore: {}", std::io::Error::last_os_error());
        pages.iter().filter(|p| *p & 1 == 1).count()
    }

    /// Allocates a block shaped as sled's I/O buffer with `allocator`;
    /// returns how many of its pages were resident before anything was
    /// written to it.
    #[allow(unsafe_code)]
    fn resident_when_allocated(allocator: &dyn std::alloc::GlobalAlloc) -> usize {
        const SEGMENT: usize = 512 * 1024;
        let layout = std::alloc::Layout::from_size_align(SEGMENT, 8192).expect("a valid layout");
        // SAFETY: a layout of non-zero size; the block is freed below with
        // the same layout by the allocator that gave it.
        unsafe {
            let ptr = allocator.alloc(layout);
            assert!(!ptr.is_null(), "no memory for a 512 KiB block");
            let resident = resident_pages(ptr, SEGMENT);
            allocator.dealloc(ptr, layout);
            resident
        }
    }

    pub fn sleds_io_buffer_is_committed_when_allocated() {
        // Tuned, the system gives the block pages of its own, not yet
        // touched: its RSS would grow as sled fills it.
        let untouched = resident_when_allocated(&std::alloc::System);
        assert!(
            untouched <= 2,
            "{untouched} of 128 pages resident from the system"
        );
        // The agent's allocator: all 128 pages count from the start.
        let committed = resident_when_allocated(&ward_agent::allocator::Allocator);
        assert_eq!(committed, 128, "pages resident from the agent's allocator");
        println!("test sleds_io_buffer_is_committed_when_allocated ... ok");
    }
}

fn main() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        glibc::a_large_buffer_gets_pages_of_its_own_once_tuned_and_gives_them_back();
        glibc::sleds_io_buffer_is_committed_when_allocated();
    }
}
