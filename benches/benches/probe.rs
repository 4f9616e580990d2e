fn main() {
    for (n, size) in [(7000usize, 1000usize), (70000, 1000), (500, 140_000)] {
        let dst = tempfile::tempdir().unwrap();
        let db = sled::Config::new()
            .path(dst.path())
            .mode(sled::Mode::LowSpace)
            .flush_every_ms(None)
            .open()
            .unwrap();
        let mut x = 1u64;
        for i in 0..n {
            let v: Vec<u8> = (0..size)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            db.insert((i as u64).to_be_bytes(), v).unwrap();
        }
        db.flush().unwrap();
        drop(db);
        println!(
            "{n} x {size}: {} bytes for {} of data",
            walk(dst.path()),
            n * size
        );
    }
}
fn walk(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .unwrap()
        .flatten()
        .map(|e| {
            let m = e.metadata().unwrap();
            if m.is_dir() { walk(&e.path()) } else { m.len() }
        })
        .sum()
}
