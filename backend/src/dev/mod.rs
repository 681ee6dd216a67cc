//! What the local stack and the tests run beside the service: a fresh chain with the contracts
//! ([`devnet`], for `make run`, the demo and the tests) and a private PostgreSQL server ([`devdb`]).

pub mod devdb;
pub mod devnet;

/// A free loopback port below Linux's ephemeral range (32768 and up), for a server this process starts
/// and then tells the number. The kernel never gives such a port to an outgoing connection or to a
/// listener on port 0, so it stays free between the check and the server's bind, and while a test has
/// the server stopped. The ports are taken in turn from a random place in the range, so that servers
/// this process starts at once never get the same one. Only a port another process picked from this
/// range and has not bound yet may still be handed out ([`devdb::PostgresServer`] then starts on
/// another).
pub fn free_loopback_port() -> crate::Result<u16> {
    const FIRST: u32 = 20_000;
    const COUNT: u32 = 32_768 - FIRST;
    static NEXT: std::sync::LazyLock<std::sync::atomic::AtomicU32> =
        std::sync::LazyLock::new(|| std::sync::atomic::AtomicU32::new(rand::random::<u32>() % COUNT));
    for _ in 0..100 {
        let turn = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let port = u16::try_from(FIRST + turn % COUNT).expect("below 32768");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Err(crate::Error::Config("no free loopback port between 20000 and 32767".into()))
}
