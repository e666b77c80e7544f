//! An in-process backend for the demo and tests: it remembers whether it is demoted, counts the
//! calls, can be told to fail the next N calls, and reports CARP states a test or the demo
//! scripts with [`SimulatedBackend::set_carp`].

use super::{Backend, BackendError, BackendFuture, CarpSeen, Observation};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

/// Shared state, so a test or the demo can look at (and break) the backend the daemon uses.
#[derive(Debug, Default)]
pub struct SimState {
    pub demoted: AtomicBool,
    pub demotes: AtomicU32,
    pub promotes: AtomicU32,
    /// The next this-many demote/promote calls fail.
    pub fail_next: AtomicU32,
    /// The next this-many `observe` calls fail (apart from `fail_next`, so scripted demote
    /// failures are not used up by the daemon's periodic readings).
    pub fail_observe: AtomicU32,
    /// What `observe` reports as CARP states; `None` (unknown) until set.
    pub carp: Mutex<Option<Vec<CarpSeen>>>,
}

#[derive(Debug, Default, Clone)]
pub struct SimulatedBackend {
    pub state: Arc<SimState>,
}

impl SimulatedBackend {
    /// Sets the CARP states `observe` reports from now on.
    pub fn set_carp(&self, carp: Vec<CarpSeen>) {
        // A poisoned lock only means a panic elsewhere while holding it; the data is whole.
        *self.state.carp.lock().unwrap_or_else(|p| p.into_inner()) = Some(carp);
    }

    fn measure(&self) -> Result<Observation, BackendError> {
        let failed =
            self.state.fail_observe.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if failed.is_ok() {
            return Err(BackendError("simulated observe failure".into()));
        }
        let held = self.state.demoted.load(Ordering::SeqCst);
        Ok(Observation {
            held: Some(held),
            foreign: false,
            demoted: Some(held),
            demotion: None,
            others: Vec::new(),
            carp: self.state.carp.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        })
    }

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
    fn observe(&self) -> BackendFuture<'_, Observation> {
        Box::pin(async move { self.measure() })
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

    #[tokio::test]
    async fn reports_scripted_carp_states_and_observe_failures() {
        use crate::machine::CarpState;
        let b = SimulatedBackend::default();
        assert_eq!(b.observe().await.unwrap().carp, None);
        let seen = vec![CarpSeen { vhid: 1, iface: "em0".into(), state: CarpState::Master }];
        b.set_carp(seen.clone());
        let o = b.observe().await.unwrap();
        assert_eq!((o.held, o.carp), (Some(false), Some(seen)));
        b.state.fail_observe.store(1, Ordering::SeqCst);
        assert!(b.observe().await.is_err());
        assert!(b.observe().await.is_ok());
        assert_eq!(b.state.fail_next.load(Ordering::SeqCst), 0);
    }
}
