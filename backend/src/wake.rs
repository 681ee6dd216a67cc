//! How the loops wake each other: the watcher marks the agreements its events changed ([`Changed`])
//! and notifies the reconciler, which looks at those first.

use std::collections::HashSet;

/// Agreements whose records the watcher changed since the reconciler last looked. A pass woken by
/// the watcher reconciles only these, so a new event costs the same with ten thousand agreements
/// running as with one; a regular full pass looks at every open agreement, for what only the clock
/// moves (an end time, a window, an expired activation) and for retries.
#[derive(Default)]
pub struct Changed(std::sync::Mutex<ChangedSet>);

#[derive(Default)]
struct ChangedSet {
    ids: HashSet<u64>,
    /// Everything may have changed (records were rolled back to a fork).
    all: bool,
}

impl Changed {
    pub fn mark(&self, id: u64) {
        self.0.lock().expect("not poisoned").ids.insert(id);
    }

    pub fn mark_all(&self) {
        self.0.lock().expect("not poisoned").all = true;
    }

    /// The marked agreements (None: all of them), cleared.
    pub fn take(&self) -> Option<HashSet<u64>> {
        let set = std::mem::take(&mut *self.0.lock().expect("not poisoned"));
        (!set.all).then_some(set.ids)
    }
}
