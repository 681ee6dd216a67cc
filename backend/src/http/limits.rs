//! What one client, and all clients together, may hold of the HTTP API: connections and the time to
//! send a request ([`super::server`]), progress streams ([`super::events`]), and sign-ins
//! ([`super::session`]). A client is its address: the connection's peer, or the header a reverse proxy
//! sets (`CLIENT_IP_HEADER`).

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr},
    num::NonZeroU32,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::http::HeaderName;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::{Error, Result, config::HttpArgs};

/// The limits, as `HttpArgs` sets them.
#[derive(Debug, Clone)]
pub struct Limits {
    pub header_timeout: Duration,
    pub request_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_client: usize,
    pub event_streams_max: usize,
    pub event_streams_per_client: usize,
    pub event_stream_lifetime: Duration,
    pub signin_per_client_per_minute: NonZeroU32,
    pub signin_nonces_max: u64,
    pub client_ip_header: Option<HeaderName>,
}

impl Limits {
    pub fn from_args(args: &HttpArgs) -> Result<Self> {
        let count = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        let client_ip_header = match &args.client_ip_header {
            Some(name) => Some(
                HeaderName::try_from(name.as_str())
                    .map_err(|e| Error::Config(format!("CLIENT_IP_HEADER {name:?} is not a header name: {e}")))?,
            ),
            None => None,
        };
        Ok(Self {
            header_timeout: Duration::from_secs(args.header_timeout_secs),
            request_timeout: Duration::from_secs(args.request_timeout_secs),
            max_connections: count(args.max_connections),
            max_connections_per_client: count(args.max_connections_per_client),
            event_streams_max: count(args.event_streams_max),
            event_streams_per_client: count(args.event_streams_per_client),
            event_stream_lifetime: Duration::from_secs(args.event_stream_lifetime_secs),
            signin_per_client_per_minute: NonZeroU32::new(args.signin_per_client_per_minute)
                .ok_or_else(|| Error::Config("SIGNIN_PER_CLIENT_PER_MINUTE must be at least 1".into()))?,
            signin_nonces_max: args.signin_nonces_max,
            client_ip_header,
        })
    }
}

impl Default for Limits {
    /// The settings' defaults (`HttpArgs`; a test keeps the two the same).
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: 4096,
            max_connections_per_client: 64,
            event_streams_max: 4096,
            event_streams_per_client: 32,
            event_stream_lifetime: Duration::from_secs(600),
            signin_per_client_per_minute: NonZeroU32::new(20).expect("not zero"),
            signin_nonces_max: 10_000,
            client_ip_header: None,
        }
    }
}

/// The address requests are counted by when none is known (a request that did not come through
/// [`super::server`], such as a test's `oneshot`).
pub const UNKNOWN_CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

/// Counts something held (a connection, a stream) in all and per client, up to a maximum of each.
#[derive(Debug)]
pub struct Counter {
    max_total: usize,
    max_per_client: usize,
    held: Mutex<Held>,
}

#[derive(Debug, Default)]
struct Held {
    total: usize,
    by_client: HashMap<IpAddr, usize>,
}

/// One thing held; it is given back when dropped.
#[derive(Debug)]
pub struct Slot {
    counter: Arc<Counter>,
    client: IpAddr,
}

impl Counter {
    pub fn new(max_total: usize, max_per_client: usize) -> Arc<Self> {
        Arc::new(Self { max_total, max_per_client, held: Mutex::default() })
    }

    /// A slot for `client`, or None when it holds its most already or everything is taken.
    pub fn try_take(self: &Arc<Self>, client: IpAddr) -> Option<Slot> {
        let mut held = self.held.lock().expect("not poisoned");
        let mine = held.by_client.get(&client).copied().unwrap_or(0);
        if held.total >= self.max_total || mine >= self.max_per_client {
            return None;
        }
        held.total += 1;
        held.by_client.insert(client, mine + 1);
        Some(Slot { counter: Arc::clone(self), client })
    }

    /// How many are held now.
    pub fn held(&self) -> usize {
        self.held.lock().expect("not poisoned").total
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self.counter.held.lock().expect("not poisoned");
        held.total -= 1;
        if let Some(mine) = held.by_client.get_mut(&self.client) {
            *mine -= 1;
            if *mine == 0 {
                held.by_client.remove(&self.client);
            }
        }
    }
}

/// The limits with the state that enforces them, shared by every request of this process.
#[derive(Debug)]
pub struct Guards {
    pub limits: Limits,
    /// Open progress streams.
    pub streams: Arc<Counter>,
    /// Sign-in requests (nonces and verifications), a token bucket per client.
    signins: DefaultKeyedRateLimiter<IpAddr>,
}

impl Guards {
    pub fn new(limits: Limits) -> Arc<Self> {
        let streams = Counter::new(limits.event_streams_max, limits.event_streams_per_client);
        let signins = RateLimiter::keyed(Quota::per_minute(limits.signin_per_client_per_minute));
        Arc::new(Self { limits, streams, signins })
    }

    /// Whether `client` may make another sign-in request now; if not, in how many seconds.
    pub fn signin_allowed(&self, client: IpAddr) -> std::result::Result<(), u64> {
        self.signins.check_key(&client).map_err(|not_until| {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(&governor::clock::DefaultClock::default()));
            wait.as_secs().max(1)
        })
    }

    /// Forgets the buckets of clients that are full again (the purge timer's work).
    pub fn forget_idle_clients(&self) {
        self.signins.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_the_settings_defaults() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            http: HttpArgs,
        }
        let parsed = Limits::from_args(&Cli::parse_from(["conference-backend"]).http).unwrap();
        assert_eq!(format!("{parsed:?}"), format!("{:?}", Limits::default()));
    }

    #[test]
    fn a_counter_caps_each_client_and_everyone_and_gives_back_on_drop() {
        let counter = Counter::new(3, 2);
        let (a, b) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let first = counter.try_take(a).unwrap();
        let _second = counter.try_take(a).unwrap();
        assert!(counter.try_take(a).is_none(), "two per client");
        let _third = counter.try_take(b).unwrap();
        assert!(counter.try_take(b).is_none(), "three in all");
        drop(first);
        let _fourth = counter.try_take(b).expect("a slot given back is free again");
        assert_eq!(counter.held(), 3);
    }

    #[test]
    fn sign_ins_are_limited_per_client() {
        let guards =
            Guards::new(Limits { signin_per_client_per_minute: NonZeroU32::new(2).unwrap(), ..Limits::default() });
        let (a, b) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        assert!(guards.signin_allowed(a).is_ok());
        assert!(guards.signin_allowed(a).is_ok());
        let wait = guards.signin_allowed(a).unwrap_err();
        assert!((1..=60).contains(&wait), "{wait}");
        assert!(guards.signin_allowed(b).is_ok(), "another client has its own bucket");
    }
}
