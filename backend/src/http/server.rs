//! The HTTP/1.1 server under the API's router (hyper, as axum's own `serve` but with limits): a client has
//! `HTTP_HEADER_TIMEOUT_SECS` to send a request's headers, and an idle connection is closed after as
//! long; at most `HTTP_MAX_CONNECTIONS` connections are open (more wait in the listen queue), and one
//! client holds at most `HTTP_MAX_CONNECTIONS_PER_CLIENT` (more are closed at once; behind a reverse
//! proxy, whose connections all come from one address, that cap is the proxy's to enforce). Request
//! and body timeouts are layers of the router ([`super::router`]). Every request carries its peer's
//! address (`ConnectInfo`).

use std::{convert::Infallible, future::Future, net::SocketAddr, sync::Arc, time::Duration};

use axum::{Router, extract::ConnectInfo};
use hyper::{body::Incoming, server::conn::http1};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
    service::TowerToHyperService,
};
use tokio::{net::TcpListener, sync::Semaphore};
use tower::ServiceExt;
use tracing::{debug, warn};

use super::limits::{Counter, Limits};

/// How long a shutdown waits for open connections (progress streams never end by themselves).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Serves `app` on `listener` within `limits` until `shutdown` resolves, then lets open requests finish
/// for a few seconds.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let open = Arc::new(Semaphore::new(limits.max_connections));
    // Behind a proxy every connection is the proxy's: only the total cap applies.
    let per_client =
        limits.client_ip_header.is_none().then(|| Counter::new(usize::MAX, limits.max_connections_per_client));
    // HTTP/1.1 only: browsers speak HTTP/2 over TLS, which a reverse proxy terminates; and a connection
    // that might be HTTP/2 is read without a timer until its first bytes tell.
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&open).acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors, or the peer gave up: keep serving the others.
                    warn!(%err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let slot = match &per_client {
            Some(counter) => match counter.try_take(peer.ip()) {
                Some(slot) => Some(slot),
                None => {
                    debug!(%peer, "a client at its connection limit: closed");
                    continue;
                }
            },
            None => None,
        };
        let app = app.clone();
        let service = tower::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            let app = app.clone();
            async move { Ok::<_, Infallible>(app.oneshot(request).await.unwrap_or_else(|never| match never {})) }
        });
        let connection = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                debug!(%peer, %err, "connection ended");
            }
            drop((permit, slot));
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await.is_err() {
        debug!("connections still open after the shutdown grace; closing them");
    }
    Ok(())
}
