//! Telling key guessers to back off: after `auth_failures_per_minute`
//! (default 20) failed authentications from one address within a minute,
//! that address's *failing* attempts get 429 (with `Retry-After`) instead of
//! 401 until the minute is over — a signal, and a count in the logs and
//! metrics, not a wall: keys are 256 random bits, so guessing is hopeless
//! anyway, and each attempt costs a hash and no body read. A request with a valid key is never refused because of
//! someone else's failures on the same address (a shared NAT, a proxy, a
//! tenant's own VM), and keys are checked before any body is read, so a
//! failing attempt costs little. Bounded: at most 10,000 addresses are
//! tracked, expired entries are dropped first.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::AppState;

const WINDOW: Duration = Duration::from_secs(60);
const MAX_TRACKED: usize = 10_000;

/// Failed authentications per address.
#[derive(Debug)]
pub struct Lockout {
    max_failures: u32,
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl Lockout {
    /// Locks an address out after `max_failures` failures in a minute (0: never).
    pub fn new(max_failures: u32) -> Lockout {
        Lockout {
            max_failures,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Seconds left in the lockout of `ip`, if locked out.
    pub(crate) fn locked(&self, ip: IpAddr, now: Instant) -> Option<u64> {
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let (count, since) = map.get(&ip)?;
        let elapsed = now.duration_since(*since);
        (self.max_failures > 0 && *count >= self.max_failures && elapsed < WINDOW)
            .then(|| (WINDOW - elapsed).as_secs().max(1))
    }

    /// Records a failed authentication from `ip`.
    pub(crate) fn failed(&self, ip: IpAddr, now: Instant) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_TRACKED && !map.contains_key(&ip) {
            map.retain(|_, (_, since)| now.duration_since(*since) < WINDOW);
            if map.len() >= MAX_TRACKED {
                map.clear();
            }
        }
        let entry = map.entry(ip).or_insert((0, now));
        if now.duration_since(entry.1) >= WINDOW {
            *entry = (0, now);
        }
        entry.0 += 1;
    }
}

/// The address a request comes from: the peer's, or, when the peer is one
/// of `trusted_proxies`, the rightmost `X-Forwarded-For` entry that is not a
/// trusted proxy (what the proxy saw; entries further left are the
/// client's own say and cannot be trusted).
pub(crate) fn client_ip(
    trusted: &[IpAddr],
    peer: IpAddr,
    headers: &axum::http::HeaderMap,
) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|part| part.trim().parse::<IpAddr>().ok())
        .rev()
        .find(|ip| !trusted.contains(ip))
        .unwrap_or(peer)
}

/// The middleware: counts 401 answers per address, and turns them into 429
/// once the address is locked out. Successful requests pass untouched.
pub(crate) async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| client_ip(&state.trusted_proxies, c.0.ip(), request.headers()));
    let response = next.run(request).await;
    let Some(ip) = ip else {
        return response;
    };
    if response.status() != StatusCode::UNAUTHORIZED {
        return response;
    }
    let now = Instant::now();
    let locked = state.lockout.locked(ip, now);
    state.lockout.failed(ip, now);
    match locked {
        Some(secs) => {
            let mut e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("too many failed authentications from {ip}; try again in {secs} s"),
            );
            e.retry_after = Some(secs as u32);
            e.into_response()
        }
        None => response,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_addresses_count_only_from_trusted_proxies() {
        let proxy: IpAddr = [127, 0, 0, 1].into();
        let mut h = axum::http::HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "6.6.6.6, 10.1.2.3".parse().expect("header"),
        );
        // From the proxy: the address the proxy saw (the rightmost), not the
        // one the client claimed.
        assert_eq!(client_ip(&[proxy], proxy, &h), IpAddr::from([10, 1, 2, 3]));
        // From anyone else: the header is the client's word, ignored.
        let other: IpAddr = [10, 9, 9, 9].into();
        assert_eq!(client_ip(&[proxy], other, &h), other);
        assert_eq!(client_ip(&[], proxy, &h), proxy);
        assert_eq!(client_ip(&[proxy], proxy, &Default::default()), proxy);
    }

    #[test]
    fn twenty_failures_lock_an_address_out_for_the_rest_of_the_minute() {
        let l = Lockout::new(20);
        let ip: IpAddr = [10, 0, 0, 1].into();
        let other: IpAddr = [10, 0, 0, 2].into();
        let t0 = Instant::now();
        for _ in 0..19 {
            l.failed(ip, t0);
        }
        assert_eq!(l.locked(ip, t0), None);
        l.failed(ip, t0);
        assert!(l.locked(ip, t0 + Duration::from_secs(1)).is_some());
        assert_eq!(l.locked(other, t0), None, "per address");
        assert_eq!(l.locked(ip, t0 + WINDOW), None, "over after the window");
        l.failed(ip, t0 + WINDOW);
        assert_eq!(
            l.locked(ip, t0 + WINDOW),
            None,
            "a new window starts from zero"
        );
    }
}
