//! A register's network link: a loopback TCP forwarder the coordinator can cut.
//!
//! While the link is down the forwarder stops listening (connects are refused, as with no
//! route) and drops every open connection mid-stream (as when Wi-Fi goes). The register's
//! HTTP transport sees real connection failures, not a simulation inside the engine.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// A switchable forwarder from a local port to the server.
pub struct Link {
    addr: SocketAddr,
    up: watch::Sender<bool>,
    is_up: Arc<AtomicBool>,
}

impl Link {
    /// Starts forwarding `127.0.0.1:<free port>` to `target`.
    pub async fn start(target: SocketAddr) -> std::io::Result<Link> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (up, rx) = watch::channel(true);
        let is_up = Arc::new(AtomicBool::new(true));
        tokio::spawn(serve(listener, addr, target, rx));
        Ok(Link { addr, up, is_up })
    }

    /// Where the register connects.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Cuts or restores the link.
    pub fn set_up(&self, up: bool) {
        self.is_up.store(up, Ordering::SeqCst);
        self.up.send_replace(up);
    }

    /// Whether the link is up.
    pub fn is_up(&self) -> bool {
        self.is_up.load(Ordering::SeqCst)
    }
}

async fn serve(mut listener: TcpListener, addr: SocketAddr, target: SocketAddr, mut up: watch::Receiver<bool>) {
    loop {
        // Up: accept and forward until the link goes down.
        let mut conns = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    if let Ok((client, _)) = accepted {
                        conns.spawn(forward(client, target));
                    }
                }
                changed = up.changed() => {
                    if changed.is_err() { return; }
                    if !*up.borrow() { break; }
                }
            }
        }
        // Down: drop every connection and stop listening.
        conns.abort_all();
        drop(listener);
        loop {
            if up.changed().await.is_err() {
                return;
            }
            if *up.borrow() {
                break;
            }
        }
        listener = loop {
            match TcpListener::bind(addr).await {
                Ok(l) => break l,
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            }
        };
    }
}

async fn forward(mut client: TcpStream, target: SocketAddr) {
    let Ok(mut server) = TcpStream::connect(target).await else { return };
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
}
