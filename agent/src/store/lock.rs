//! Exclusive ownership of a data directory.
//!
//! A `LOCK` file holds an advisory lock for as long as the store is open and
//! names its holder (pid, host, start time), so that a second agent on the
//! same directory is told who is in the way instead of corrupting it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use super::{StoreError, io_at};

/// Held for as long as the store is open; released on drop.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl DirLock {
    pub fn acquire(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join("LOCK");
        let io = io_at(&path);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(&io)?;
        // A lock this very process released can still be held for a moment
        // by a child being spawned (fork copies the descriptor; exec closes
        // it): when the file names this process, wait that moment out.
        let me = format!("pid {} ", std::process::id());
        let mut tries = 0;
        let locked = loop {
            match file.try_lock() {
                Err(TryLockError::WouldBlock) if tries < 100 => {
                    let mut holder = String::new();
                    let _ = file.seek(SeekFrom::Start(0));
                    let _ = file.read_to_string(&mut holder);
                    if !holder.starts_with(&me) {
                        break Err(TryLockError::WouldBlock);
                    }
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                other => break other,
            }
        };
        match locked {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                // The holder is informative only: a read failure leaves it empty.
                let _ = file.seek(SeekFrom::Start(0));
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(StoreError::Locked {
                    dir: dir.to_path_buf(),
                    holder: if holder.is_empty() {
                        "an unknown process".to_string()
                    } else {
                        holder.to_string()
                    },
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        file.set_len(0).map_err(&io)?;
        file.seek(SeekFrom::Start(0)).map_err(&io)?;
        writeln!(
            file,
            "pid {} ({}) on host {} since unix time {}",
            std::process::id(),
            std::env::args().next().unwrap_or_default(),
            host.trim(),
            started
        )
        .map_err(&io)?;
        Ok(Self { _file: file })
    }
}
