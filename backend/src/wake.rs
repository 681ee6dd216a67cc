//! How the loops wake each other: the watcher marks the agreements its events changed ([`Changed`])
//! and notifies the reconciler, which looks at those first; so do the changes other replicas make
//! through their APIs (a signed stop, a participant list, a monitor's report), heard on the store's
//! change feed ([`follow_other_replicas`]).

use std::collections::HashSet;

use tokio::sync::{
    Notify,
    broadcast::{self, error::RecvError},
};

use crate::store::{Change, Heard};

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

/// Marks in `changed` every agreement another process changed (the feed's remote changes), and wakes
/// the reconciler through `wake`, until the feed closes. Run by the leader only (a follower's marks
/// would pile up unread). This replica's own writes are not followed: the watcher marks what its
/// events change, and the loops' own steps must not wake the reconciler again and again. A
/// `Change::All` from elsewhere (or falling behind the feed) marks everything.
pub async fn follow_other_replicas(mut feed: broadcast::Receiver<Heard>, changed: &Changed, wake: &Notify) {
    loop {
        match feed.recv().await {
            Ok(Heard { remote: false, .. }) => continue,
            Ok(Heard { change: Change::Agreement(id), .. }) => changed.mark(id),
            Ok(Heard { change: Change::All, .. }) | Err(RecvError::Lagged(_)) => changed.mark_all(),
            Err(RecvError::Closed) => return,
        }
        wake.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, time::Duration};

    use super::*;

    #[tokio::test]
    async fn other_replicas_changes_wake_the_reconciler_and_its_own_do_not() {
        let (feed, changed, wake) = (broadcast::Sender::new(16), Arc::new(Changed::default()), Arc::new(Notify::new()));
        let following = tokio::spawn({
            let (receiver, changed, wake) = (feed.subscribe(), changed.clone(), wake.clone());
            async move { follow_other_replicas(receiver, &changed, &wake).await }
        });
        feed.send(Heard { change: Change::Agreement(1), remote: false }).unwrap();
        feed.send(Heard { change: Change::All, remote: false }).unwrap();
        feed.send(Heard { change: Change::Agreement(2), remote: true }).unwrap();
        tokio::time::timeout(Duration::from_secs(10), wake.notified()).await.expect("woken");
        assert_eq!(changed.take(), Some(HashSet::from([2])), "only the other replica's change is marked");

        feed.send(Heard { change: Change::All, remote: true }).unwrap();
        tokio::time::timeout(Duration::from_secs(10), wake.notified()).await.expect("woken");
        assert_eq!(changed.take(), None, "everything is marked");
        drop(feed);
        following.await.unwrap();
    }
}
