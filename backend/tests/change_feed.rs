//! The store's change feed across processes: two stores on one PostgreSQL database (as two replicas
//! hold them) hear each other's committed changes, their own once (never echoed back), and after the
//! server restarts, or after the listener's connection goes silent for good, everything once, then
//! each other again.

mod common;

use std::{net::SocketAddr, time::Duration};

use conference_backend::{
    dev::devdb::PostgresServer,
    domain::availability::ProbeResult,
    store::{Change, Heard, Store},
};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{broadcast, watch},
};

/// How long a change may take to be heard before the test gives up (a bound against hanging, not a
/// measurement: the benchmark measures).
const GENEROUS: Duration = Duration::from_secs(30);

async fn next(feed: &mut broadcast::Receiver<Heard>, who: &str) -> Heard {
    match tokio::time::timeout(GENEROUS, feed.recv()).await {
        Ok(Ok(heard)) => heard,
        Ok(Err(err)) => panic!("{who}'s feed: {err}"),
        Err(_) => panic!("{who} heard nothing within {GENEROUS:?}"),
    }
}

fn here(change: Change) -> Heard {
    Heard { change, remote: false }
}

fn elsewhere(change: Change) -> Heard {
    Heard { change, remote: true }
}

#[tokio::test]
async fn two_stores_on_one_database_hear_each_other_and_themselves_once() {
    let server = PostgresServer::start("feed_two_stores").unwrap();
    let (a, b) = (Store::open(&server.url()).await.unwrap(), Store::open(&server.url()).await.unwrap());
    let (mut heard_a, mut heard_b) = (a.subscribe(), b.subscribe());

    // a writes: it hears each change at once, b from the database, in commit order.
    a.apply_events(&[common::terms_published(), common::signed()], 3, common::SIGNED_AT).await.unwrap();
    // Two probes of one agreement in one transaction: one notification.
    let probe = |at_ms| ProbeResult { agreement: 1, session: 1, at_ms, ok: true, detail: None };
    a.record_probes(&[probe(1_000), probe(2_000)]).await.unwrap();
    a.apply_events(&[], 4, common::SIGNED_AT + 1).await.unwrap();
    a.conference_deploying(1).await.unwrap();
    let written = [Change::All, Change::Agreement(1), Change::All, Change::Agreement(1)];
    for change in written {
        assert_eq!(next(&mut heard_a, "a").await, here(change));
    }
    for change in written {
        assert_eq!(next(&mut heard_b, "b").await, elsewhere(change), "b hears a's writes, each once");
    }

    // b writes after it heard all of a's: had a heard its own writes echoed back, they would come
    // before b's change (notifications arrive in commit order).
    b.conference_removed(1).await.unwrap();
    assert_eq!(next(&mut heard_b, "b").await, here(Change::Agreement(1)));
    assert_eq!(next(&mut heard_a, "a").await, elsewhere(Change::Agreement(1)));
}

#[tokio::test]
async fn after_the_server_restarts_a_listener_says_everything_changed_and_hears_again() {
    let server = PostgresServer::start("feed_restart").unwrap();
    let (a, b) = (Store::open(&server.url()).await.unwrap(), Store::open(&server.url()).await.unwrap());
    let mut heard_b = b.subscribe();
    a.apply_events(&[common::terms_published(), common::signed()], 3, common::SIGNED_AT).await.unwrap();
    assert_eq!(next(&mut heard_b, "b").await, elsewhere(Change::All));

    server.stop().unwrap();
    server.start_again().unwrap();
    // Whatever was published while b's listener was away is lost: b tells its followers to read all.
    assert_eq!(next(&mut heard_b, "b").await, elsewhere(Change::All));

    // a's pool finds its connections dead and makes new ones; its first tries may fail.
    let mut tries = 0;
    while let Err(err) = a.conference_deploying(1).await {
        tries += 1;
        assert!(tries < 50, "a cannot write after the restart: {err}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(next(&mut heard_b, "b").await, elsewhere(Change::Agreement(1)));
}

#[tokio::test]
async fn a_listener_whose_connection_falls_silent_connects_again_and_says_everything_changed() {
    let server = PostgresServer::start("feed_silent").unwrap();
    let proxy = StallingProxy::start(([127, 0, 0, 1], server.port).into()).await;
    let a = Store::open(&server.url()).await.unwrap();
    let b =
        Store::open(&server.url().replace(&format!(":{}/", server.port), &format!(":{}/", proxy.port))).await.unwrap();
    let mut heard_b = b.subscribe();
    a.apply_events(&[common::terms_published(), common::signed()], 3, common::SIGNED_AT).await.unwrap();
    assert_eq!(next(&mut heard_b, "b").await, elsewhere(Change::All));

    // b's connections stay open but nothing passes on them any more, as when the server's host is gone
    // or a firewall between forgot them: no error ever comes. New connections pass.
    proxy.stall_open_connections();
    a.conference_deploying(1).await.unwrap();
    // Lost on the silent connection; heard as "everything" once b's listener found it silent.
    assert_eq!(next(&mut heard_b, "b").await, elsewhere(Change::All));
    a.conference_removed(1).await.unwrap();
    assert_eq!(next(&mut heard_b, "b").await, elsewhere(Change::Agreement(1)), "b hears again, on its new connection");
}

/// A loopback TCP proxy to `target` that can stall the connections open through it: they stay open but
/// carry nothing more either way; connections opened afterwards pass.
struct StallingProxy {
    port: u16,
    stalls: watch::Sender<u32>,
}

impl StallingProxy {
    async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let stalls = watch::Sender::new(0);
        let stalled = stalls.subscribe();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut stalled = stalled.clone();
                let opened_at = *stalled.borrow_and_update();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(target).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = async { stalled.wait_for(|stalls| *stalls > opened_at).await.map(drop) } => {
                            // Both sockets held open, neither read nor written, until the test ends.
                            let _held = (client, server);
                            std::future::pending::<()>().await;
                        }
                    }
                });
            }
        });
        Self { port, stalls }
    }

    fn stall_open_connections(&self) {
        self.stalls.send_modify(|stalls| *stalls += 1);
    }
}
