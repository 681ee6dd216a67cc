//! A TCP proxy on a loopback port that a test can cut and restore: while it is down it drops every
//! open connection and refuses new ones (it accepts and closes them at once), as a dead endpoint does.
//! The fault tests put it between the backend and the chain.

use std::net::SocketAddr;

use anyhow::Result;
use tokio::{
    io::copy_bidirectional,
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinHandle,
};

pub struct Proxy {
    pub addr: SocketAddr,
    up: watch::Sender<bool>,
    accept: JoinHandle<()>,
}

impl Proxy {
    /// Forwards a new loopback port to `target`.
    pub async fn start(target: SocketAddr) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let up = watch::Sender::new(true);
        let state = up.subscribe();
        let accept = tokio::spawn(async move {
            loop {
                // A client that gives up before its connection is accepted makes `accept` fail; the
                // proxy goes on accepting (stopping here would leave the endpoint down for good).
                let Ok((client, _)) = listener.accept().await else {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                };
                if !*state.borrow() {
                    continue; // dropped: the connection closes at once
                }
                tokio::spawn(forward(client, target, state.clone()));
            }
        });
        Ok(Self { addr, up, accept })
    }

    /// Cuts (false) or restores (true) the connection.
    pub fn set_up(&self, up: bool) {
        self.up.send_replace(up);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Copies both ways until either side closes or the proxy goes down.
async fn forward(mut client: TcpStream, target: SocketAddr, mut up: watch::Receiver<bool>) {
    let Ok(mut server) = TcpStream::connect(target).await else { return };
    tokio::select! {
        _ = copy_bidirectional(&mut client, &mut server) => {}
        _ = up.wait_for(|up| !*up) => {}
    }
}
