//! An in-process backend for the demo and tests: it remembers whether it is demoted, counts the
//! calls, and can be told to fail the next N calls.

use super::{Backend, BackendError, BackendFuture};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

/// Shared state, so a test or the demo can look at (and break) the backend the daemon uses.
#[derive(Debug, Default)]
pub struct SimState {
    pub demoted: AtomicBool,
    pub demotes: AtomicU32,
    pub promotes: AtomicU32,
    /// The next this-many calls fail.
    pub fail_next: AtomicU32,
}

#[derive(Debug, Default, Clone)]
pub struct SimulatedBackend {
    pub state: Arc<SimState>,
}

impl SimulatedBackend {
    fn call(&self, demote: bool) -> Result<(), BackendError> {
        let failed =
            self.state.fail_next.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if failed.is_ok() {
            return Err(BackendError("simulated failure".into()));
        }
        let counter = if demote { &self.state.demotes } else { &self.state.promotes };
        counter.fetch_add(1, Ordering::SeqCst);
        self.state.demoted.store(demote, Ordering::SeqCst);
        Ok(())
    }
}

impl Backend for SimulatedBackend {
    fn name(&self) -> &'static str {
        "simulated"
    }
    fn demote(&self) -> BackendFuture<'_, ()> {
        Box::pin(async move { self.call(true) })
    }
    fn promote(&self) -> BackendFuture<'_, ()> {
        Box::pin(async move { self.call(false) })
    }
    fn demoted(&self) -> BackendFuture<'_, Option<bool>> {
        Box::pin(async move { Ok(Some(self.state.demoted.load(Ordering::SeqCst))) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn remembers_state_and_fails_on_request() {
        let b = SimulatedBackend::default();
        assert_eq!(b.demoted().await, Ok(Some(false)));
        b.demote().await.unwrap();
        assert_eq!(b.demoted().await, Ok(Some(true)));
        b.state.fail_next.store(1, Ordering::SeqCst);
        assert!(b.promote().await.is_err());
        assert_eq!(b.demoted().await, Ok(Some(true)));
        b.promote().await.unwrap();
        assert_eq!(b.demoted().await, Ok(Some(false)));
        assert_eq!(b.state.demotes.load(Ordering::SeqCst), 1);
        assert_eq!(b.state.promotes.load(Ordering::SeqCst), 1);
    }
}
