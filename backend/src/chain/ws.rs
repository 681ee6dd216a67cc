//! The node's WebSocket, with every segment from the node acknowledged at once.
//!
//! Why not alloy's `WsConnect` as it comes: a node whose server leaves Nagle's algorithm on (anvil does)
//! holds a small message, a new head above all, until its previous one is acknowledged, and Linux delays
//! an acknowledgement by up to 40 ms when it has nothing to send back. Each new head then reached the
//! backend up to 40 ms late: the loop bench's median from a signing block to the deploy call was 33 ms at
//! one live agreement, of which the backend's own work was 3 ms. So the socket asks for quick
//! acknowledgements again after every read (`TCP_QUICKACK` is not sticky), and sends without delay.
//! Everything else is alloy's pubsub: the same frontend, subscriptions and reconnection; this is only
//! the backend task that moves JSON-RPC messages between the frontend and the socket (as alloy's does,
//! with its keepalive ping).

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use alloy::{
    pubsub::{ConnectionHandle, ConnectionInterface, PubSubConnect},
    rpc::json_rpc::PubSubItem,
    transports::{TransportErrorKind, TransportResult},
};
use futures::{SinkExt, StreamExt};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{Message, client::IntoClientRequest},
};
use tracing::warn;

/// A ping when the connection was quiet this long; no pong by the next one ends it (alloy's default).
const KEEPALIVE: Duration = Duration::from_secs(10);

/// Connects to `ws://` or `wss://` `url` (see the module's documentation).
#[derive(Debug, Clone)]
pub struct QuickAckWs {
    pub url: String,
}

impl PubSubConnect for QuickAckWs {
    fn is_local(&self) -> bool {
        alloy::transports::utils::guess_local_url(&self.url)
    }

    async fn connect(&self) -> TransportResult<ConnectionHandle> {
        let request = self.url.as_str().into_client_request().map_err(TransportErrorKind::custom)?;
        let uri = request.uri();
        let host = uri.host().ok_or_else(|| TransportErrorKind::custom_str("the WebSocket URL names no host"))?;
        let port = uri.port_u16().unwrap_or(if uri.scheme_str() == Some("wss") { 443 } else { 80 });
        let tcp = TcpStream::connect((host.trim_start_matches('[').trim_end_matches(']'), port))
            .await
            .map_err(TransportErrorKind::custom)?;
        tcp.set_nodelay(true).map_err(TransportErrorKind::custom)?;
        let (socket, _) = tokio_tungstenite::client_async_tls_with_config(request, QuickAck(tcp), None, None)
            .await
            .map_err(TransportErrorKind::custom)?;
        let (handle, interface) = ConnectionHandle::new();
        tokio::spawn(relay(socket, interface));
        Ok(handle)
    }
}

/// A TCP stream that asks the kernel to acknowledge at once after every read.
struct QuickAck(TcpStream);

impl AsyncRead for QuickAck {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let read = Pin::new(&mut self.0).poll_read(cx, buf);
        if read.is_ready() {
            // Only a hint: the socket works the same without it, a little slower.
            let _ = socket2::SockRef::from(&self.0).set_tcp_quickack(true);
        }
        read
    }
}

impl AsyncWrite for QuickAck {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// Moves requests from alloy's frontend to the socket and answers and notifications back, until either
/// side ends; a connection that failed is reported so that the frontend reconnects.
async fn relay(mut socket: WebSocketStream<MaybeTlsStream<QuickAck>>, mut interface: ConnectionInterface) {
    let mut keepalive = tokio::time::interval_at(tokio::time::Instant::now() + KEEPALIVE, KEEPALIVE);
    let mut expecting_pong = false;
    let failed = loop {
        tokio::select! {
            biased;
            request = interface.recv_from_frontend() => match request {
                Some(request) => {
                    keepalive.reset();
                    if let Err(err) = socket.send(Message::Text(request.get().into())).await {
                        warn!(%err, "node WebSocket: sending failed");
                        break true;
                    }
                }
                None => break false,
            },
            _ = keepalive.tick() => {
                if expecting_pong {
                    warn!("node WebSocket: no pong to the last ping");
                    break true;
                }
                expecting_pong = true;
                if let Err(err) = socket.send(Message::Ping(Default::default())).await {
                    warn!(%err, "node WebSocket: ping failed");
                    break true;
                }
            }
            message = socket.next() => match message {
                Some(Ok(Message::Text(text))) => match serde_json::from_str::<PubSubItem>(&text) {
                    Ok(item) => {
                        if interface.send_to_frontend(item).is_err() {
                            break false;
                        }
                    }
                    Err(err) => warn!(%err, "node WebSocket: a message that is not JSON-RPC; ignored"),
                },
                Some(Ok(Message::Pong(_))) => expecting_pong = false,
                Some(Ok(Message::Close(_))) | None => break true,
                Some(Ok(_)) => {}
                Some(Err(err)) => {
                    warn!(%err, "node WebSocket: reading failed");
                    break true;
                }
            },
        }
    };
    if failed {
        interface.close_with_error();
    }
}
