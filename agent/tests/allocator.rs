//! The agent's allocator settings (`budget::tune_allocator`), in a test
//! process of their own and on its main thread, where the agent makes them
//! before any other thread starts: they apply to the whole process.

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
        ward_agent::budget::release_free_memory();
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

        let made = ward_agent::budget::tune_allocator();
        assert_eq!(made, ["arena_max=1", "mmap_threshold=64KiB"]);
        let (during, after) = mapped_while_held_and_after(LEN);
        assert!(
            during >= LEN,
            "only {during} bytes mapped for a {LEN}-byte buffer"
        );
        assert_eq!(after, 0, "the buffer's pages were kept after it was freed");

        println!("test a_large_buffer_gets_pages_of_its_own_once_tuned_and_gives_them_back ... ok");
    }
}

fn main() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    glibc::a_large_buffer_gets_pages_of_its_own_once_tuned_and_gives_them_back();
}
