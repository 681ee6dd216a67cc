//! How the loops wake each other: the watcher marks the agreements its events changed ([`Changed`])
//! and notifies the reconciler, which looks at those first; so do the changes other replicas make
//! through their APIs (a signed stop, a participant list, a monitor's report), heard on the store's
//! change feed ([`follow_the_feed`]), which also wakes the settler for a new order.

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

/// The loops to wake when the feed says something changed.
pub struct Wake<'a> {
    /// Marked with what other processes changed.
    pub changed: &'a Changed,
    pub reconciler: &'a Notify,
    /// The settler, for a new order (it sends orders in its next batch).
    pub settler: &'a Notify,
}

/// Follows the store's change feed for the leader's loops (a follower's marks would pile up unread),
/// until the feed closes: marks in `changed` every agreement another process changed and wakes the
/// reconciler, and wakes the settler for a new order from any replica's API. This replica's own
/// agreement changes are not followed: the watcher marks what its events change, and the loops' own
/// steps must not wake the reconciler again and again. A `Change::All` from elsewhere (or falling
/// behind the feed) marks everything and wakes both.
pub async fn follow_the_feed(mut feed: broadcast::Receiver<Heard>, wake: Wake<'_>) {
    loop {
        match feed.recv().await {
            Ok(Heard { change: Change::Orders, .. }) => wake.settler.notify_one(),
            Ok(Heard { remote: false, .. }) => {}
            Ok(Heard { change: Change::Agreement(id), .. }) => {
                wake.changed.mark(id);
                wake.reconciler.notify_one();
            }
            Ok(Heard { change: Change::All, .. }) | Err(RecvError::Lagged(_)) => {
                wake.changed.mark_all();
                wake.reconciler.notify_one();
                wake.settler.notify_one();
            }
            Err(RecvError::Closed) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, time::Duration};

    use super::*;

    #[tokio::test]
    async fn other_replicas_changes_wake_the_reconciler_and_its_own_do_not() {
        let feed = broadcast::Sender::new(16);
        let (changed, reconciler, settler) =
            (Arc::new(Changed::default()), Arc::new(Notify::new()), Arc::new(Notify::new()));
        let following = tokio::spawn({
            let (receiver, changed, reconciler, settler) =
                (feed.subscribe(), changed.clone(), reconciler.clone(), settler.clone());
            async move {
                follow_the_feed(receiver, Wake { changed: &changed, reconciler: &reconciler, settler: &settler }).await
            }
        });
        let woken = |notify: Arc<Notify>| async move {
            tokio::time::timeout(Duration::from_secs(10), notify.notified()).await.expect("woken")
        };
        feed.send(Heard { change: Change::Agreement(1), remote: false }).unwrap();
        feed.send(Heard { change: Change::All, remote: false }).unwrap();
        feed.send(Heard { change: Change::Agreement(2), remote: true }).unwrap();
        woken(reconciler.clone()).await;
        assert_eq!(changed.take(), Some(HashSet::from([2])), "only the other replica's change is marked");

        // An order kept by this replica's API or another's: the settler sends it without waiting.
        feed.send(Heard { change: Change::Orders, remote: false }).unwrap();
        woken(settler.clone()).await;
        assert_eq!(changed.take(), Some(HashSet::new()), "an order marks no agreement");

        feed.send(Heard { change: Change::All, remote: true }).unwrap();
        woken(reconciler.clone()).await;
        woken(settler.clone()).await;
        assert_eq!(changed.take(), None, "everything is marked");
        drop(feed);
        following.await.unwrap();
    }
}
