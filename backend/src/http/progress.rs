//! What the progress streams follow: one task per process ([`ProgressFeed::run`]) re-reads an
//! agreement's record when the store's change feed says it changed ([`crate::store::feed`]: committed
//! here, or on PostgreSQL by any replica), once for all the streams that follow it. Nothing is read on
//! a timer: at rest, open streams cost nothing but their keep-alives.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
};

use tokio::sync::{
    broadcast::error::{RecvError, TryRecvError},
    watch,
};
use tracing::warn;

use super::views::agreement_view;
use crate::store::{Change, Heard, Store};

/// What a followed agreement's streams see: the JSON of its record (None until it is seen on-chain).
type View = Option<Arc<str>>;

/// The agreements followed by this process's streams, each read once per change for all of them.
pub struct ProgressFeed {
    store: Store,
    followed: Mutex<HashMap<u64, Followed>>,
}

struct Followed {
    view: watch::Sender<View>,
    streams: usize,
}

/// A stream's hold on a followed agreement; the agreement is no longer followed once none holds it.
pub struct Following {
    feed: Arc<ProgressFeed>,
    id: u64,
}

impl Drop for Following {
    fn drop(&mut self) {
        let mut followed = self.feed.followed.lock().expect("not poisoned");
        if let Some(entry) = followed.get_mut(&self.id) {
            entry.streams -= 1;
            if entry.streams == 0 {
                followed.remove(&self.id);
            }
        }
    }
}

impl ProgressFeed {
    /// The feed over `store`; [`ProgressFeed::run`] keeps it current.
    pub fn new(store: Store) -> Arc<Self> {
        Arc::new(Self { store, followed: Mutex::default() })
    }

    /// Follows agreement `id`: its records from now on. A new stream follows first and reads the
    /// record itself after, so that no change falls between the two (it may see one twice).
    pub fn follow(self: &Arc<Self>, id: u64) -> (watch::Receiver<View>, Following) {
        let mut followed = self.followed.lock().expect("not poisoned");
        let entry = followed.entry(id).or_insert_with(|| Followed { view: watch::Sender::new(None), streams: 0 });
        entry.streams += 1;
        let mut receiver = entry.view.subscribe();
        receiver.mark_unchanged();
        (receiver, Following { feed: Arc::clone(self), id })
    }

    /// Reads again the followed agreements the change feed names (all of them after `Change::All`, or
    /// when this task fell behind the feed) and hands each new record to its streams. Runs for the
    /// process's life.
    pub async fn run(self: Arc<Self>) {
        let mut changes = self.store.subscribe();
        loop {
            let mut due: HashSet<u64> = HashSet::new();
            let mut all = false;
            match changes.recv().await {
                Ok(Heard { change: Change::Agreement(id), .. }) => {
                    due.insert(id);
                }
                Ok(Heard { change: Change::All, .. }) | Err(RecvError::Lagged(_)) => all = true,
                Ok(Heard { change: Change::Orders, .. }) => continue,
                Err(RecvError::Closed) => return,
            }
            // Whatever else arrived meanwhile is taken in the same round.
            loop {
                match changes.try_recv() {
                    Ok(Heard { change: Change::Agreement(id), .. }) => {
                        due.insert(id);
                    }
                    Ok(Heard { change: Change::All, .. }) | Err(TryRecvError::Lagged(_)) => all = true,
                    Ok(Heard { change: Change::Orders, .. }) => {}
                    Err(_) => break,
                }
            }
            let ids: Vec<u64> = {
                let followed = self.followed.lock().expect("not poisoned");
                followed.keys().copied().filter(|id| all || due.contains(id)).collect()
            };
            for id in ids {
                self.refresh(id).await;
            }
        }
    }

    async fn refresh(&self, id: u64) {
        let view = match read_view(&self.store, id).await {
            Ok(view) => view,
            Err(err) => {
                // The streams keep what they sent; the next change reads again.
                warn!(agreement = id, error = %err, kind = err.label(), "progress: read failed");
                return;
            }
        };
        if let Some(entry) = self.followed.lock().expect("not poisoned").get(&id) {
            entry.view.send_if_modified(|current| {
                let changed = *current != view;
                if changed {
                    *current = view;
                }
                changed
            });
        }
    }
}

/// The JSON of `GET /api/agreements/{id}`, or None if the agreement has not been seen on-chain.
pub async fn read_view(store: &Store, id: u64) -> crate::Result<View> {
    let Some(view) = agreement_view(store, id).await? else { return Ok(None) };
    let json = serde_json::to_string(&view).map_err(|e| crate::Error::Config(format!("agreement {id}'s view: {e}")))?;
    Ok(Some(json.into()))
}
