//! One shared-state handle for the agent's books: the store, the incident
//! book and the job book are each held by several tasks through a
//! [`Shared`].
//!
//! Owns: the locking policy. A task that panicked while holding a book
//! leaves it usable, since every operation on a book leaves it consistent
//! or returns an error; so a poisoned lock is taken over, not propagated.
//! Must not: know what it holds.

use std::sync::{Arc, Mutex, MutexGuard};

/// A value held by several tasks; cloning shares it.
#[derive(Debug, Default)]
pub struct Shared<T>(Arc<Mutex<T>>);

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<T> Shared<T> {
    pub fn new(value: T) -> Self {
        Self(Arc::new(Mutex::new(value)))
    }

    /// The value, for as long as the guard lives.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The value itself, if this is the last handle to it.
    pub fn into_inner(self) -> Option<T> {
        Arc::into_inner(self.0).map(|m| m.into_inner().unwrap_or_else(|p| p.into_inner()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_while_holding_the_lock_leaves_the_value_usable() {
        let shared = Shared::new(vec![1]);
        let other = shared.clone();
        let _ = std::thread::spawn(move || {
            let mut v = other.lock();
            v.push(2);
            panic!("a task fails while holding the book");
        })
        .join();
        shared.lock().push(3);
        assert_eq!(*shared.lock(), vec![1, 2, 3]);
        assert_eq!(shared.into_inner(), Some(vec![1, 2, 3]));
    }

    #[test]
    fn into_inner_waits_for_the_last_handle() {
        let shared = Shared::new(1);
        let other = shared.clone();
        assert_eq!(shared.into_inner(), None);
        assert_eq!(other.into_inner(), Some(1));
    }
}
