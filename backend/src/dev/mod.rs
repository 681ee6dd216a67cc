//! What the local stack and the tests run beside the service: a fresh chain with the contracts
//! ([`devnet`], for `make run`, the demo and the tests) and a private PostgreSQL server ([`devdb`]).

pub mod devdb;
pub mod devnet;

/// A free loopback port below Linux's ephemeral range (32768 and up), for a server this process starts
/// and then tells the number. The kernel never gives such a port to an outgoing connection or to a
/// listener on port 0, so it stays free between the check and the server's bind (and while a test has
/// the server stopped) unless another process picks the same one here: a server that then finds it
/// taken is started again on another.
pub fn free_loopback_port() -> crate::Result<u16> {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    for _ in 0..100 {
        let port = rng.gen_range(20_000..32_768);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Err(crate::Error::Config("no free loopback port between 20000 and 32767".into()))
}
