//! Helper threads that work can do without.
//!
//! A merge walks large maps in shards on several threads, a plan writes its blocks on
//! several, and a lift reads its streams on two, but none may fail or panic because the OS
//! refuses a thread (a limit on processes, memory for a stack): `std::thread::Scope::spawn`
//! panics then. Work started with
//! [`try_spawn`] is kept where the caller can take it back, and a refused thread's share is
//! done on the calling thread.

use std::sync::{Mutex, PoisonError};
use std::thread::{Scope, ScopedJoinHandle};

/// Starts `work` on a new thread of `scope`, or returns `None` if the OS refuses one; `work`
/// is then dropped unrun, so callers hand it only a way to reach the work, not the work.
pub(crate) fn try_spawn<'scope, T: Send + 'scope>(
    scope: &'scope Scope<'scope, '_>,
    work: impl FnOnce() -> T + Send + 'scope,
) -> Option<ScopedJoinHandle<'scope, T>> {
    #[cfg(test)]
    if refused::REFUSING.with(std::cell::Cell::get) {
        return None;
    }
    std::thread::Builder::new().spawn_scoped(scope, work).ok()
}

/// Takes what `slot` holds, leaving it empty: the one taker of a helper's work, the helper
/// or, if it was refused, its caller. A poisoned lock (a taker panicked) still gives it up.
pub(crate) fn take<T>(slot: &Mutex<Option<T>>) -> Option<T> {
    slot.lock().unwrap_or_else(PoisonError::into_inner).take()
}

/// Tests of the fallback: every helper thread refused, as an exhausted OS would.
#[cfg(test)]
pub(crate) mod refused {
    use std::cell::Cell;

    thread_local! {
        /// Whether [`try_spawn`](super::try_spawn), called on this thread, refuses.
        pub(crate) static REFUSING: Cell<bool> = const { Cell::new(false) };
    }

    /// Runs `f` with every helper thread it asks for from this thread refused.
    pub(crate) fn with<T>(f: impl FnOnce() -> T) -> T {
        REFUSING.set(true);
        let out = f();
        REFUSING.set(false);
        out
    }
}
