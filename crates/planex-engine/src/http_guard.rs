//! Where `http` tools may connect: not to internal addresses (loopback, private, link-local such
//! as the 169.254.169.254 metadata service, carrier-grade NAT, unique-local, unspecified) unless
//! the tool's config says `allow_internal = true`, and redirects only within the origin of the
//! request.
//!
//! Key decision: the check is made on the addresses the connection will actually use: the guarded
//! client resolves names through [`GuardedResolver`], which drops internal addresses (and fails
//! when nothing else is left), so a name that resolves to a public address when checked and to an
//! internal one when connecting (DNS rebinding) cannot get through. IP literals, which skip
//! resolution, are checked before the request is sent ([`check_literal`]).

use planex_core::HttpTool;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect::Policy;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// A destination an `http` tool may not reach (an internal address, a redirect off the origin):
/// the error the guard's resolver and redirect policy give, so the caller can tell it from a
/// transport failure (a refusal is final, never retried).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

impl Refused {
    /// Whether `error` or any error in its source chain is a refusal.
    pub fn is_in(error: &(dyn std::error::Error + 'static)) -> bool {
        std::iter::successors(Some(error), |e| e.source()).any(|e| e.is::<Refused>())
    }
}

/// Most redirects followed (each within the origin).
const MAX_REDIRECTS: usize = 5;

/// Whether `ip` is an internal address an `http` tool may reach only when allowed.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_internal_v4(v4),
            None => is_internal_v6(v6),
        },
    }
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || a == 0
        // 100.64.0.0/10, carrier-grade NAT (often cluster-internal).
        || (a == 100 && (64..128).contains(&b))
}

fn is_internal_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    let first = segments[0];
    // IPv4 carried inside IPv6: NAT64 64:ff9b::/96, 6to4 2002::/16, IPv4-compatible ::a.b.c.d.
    let embedded =
        |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0]
        || segments[..6] == [0; 6] && !ip.is_loopback() && !ip.is_unspecified()
    {
        return is_internal_v4(embedded(segments[6], segments[7]));
    }
    if first == 0x2002 {
        return is_internal_v4(embedded(segments[1], segments[2]));
    }
    ip.is_loopback()
        || ip.is_unspecified()
        // fc00::/7 unique local, fe80::/10 link-local.
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
}

/// The refusal of an internal destination, naming the switch that allows it. The host and its
/// addresses go to the log, not into the text (which tenants may see as a step error).
fn refusal(host: &str, addresses: &[IpAddr]) -> String {
    let list: Vec<String> = addresses.iter().map(IpAddr::to_string).collect();
    tracing::warn!(host, addresses = %list.join(", "), "http tool destination refused: internal address");
    "the destination is an internal address; http tools may reach loopback, private and link-local addresses only with allow_internal = true in the tool's config".to_owned()
}

/// Refuses a URL whose host is an internal IP literal (names are checked when resolved).
pub fn check_literal(url: &reqwest::Url, tool: &HttpTool) -> Result<(), String> {
    if tool.allow_internal {
        return Ok(());
    }
    let host = url.host_str().unwrap_or_default();
    let Ok(ip) = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    else {
        return Ok(());
    };
    if is_internal(ip) {
        return Err(refusal(&ip.to_string(), &[ip]));
    }
    Ok(())
}

/// A resolver that keeps only addresses that are not internal.
#[derive(Debug, Default)]
pub struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let (internal, external): (Vec<SocketAddr>, Vec<SocketAddr>) =
                resolved.into_iter().partition(|a| is_internal(a.ip()));
            if external.is_empty() {
                let ips: Vec<IpAddr> = internal.iter().map(SocketAddr::ip).collect();
                let error: Box<dyn std::error::Error + Send + Sync> =
                    Box::new(Refused(refusal(&host, &ips)));
                return Err(error);
            }
            let addrs: Addrs = Box::new(external.into_iter());
            Ok(addrs)
        })
    }
}

/// Redirects within the origin of the first request only, at most [`MAX_REDIRECTS`].
fn same_origin_redirects() -> Policy {
    Policy::custom(|attempt| {
        let first = attempt.previous().first().map(reqwest::Url::origin);
        if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
        } else if first.is_some_and(|origin| origin == attempt.url().origin()) {
            attempt.follow()
        } else {
            let to = attempt.url().to_string();
            attempt.error(Refused(format!(
                "redirect to {to} leaves the tool's origin; http tools follow redirects only within it"
            )))
        }
    })
}

/// The HTTP clients of `http` tools: one that refuses internal addresses, one for tools allowed
/// to reach them. Both follow redirects only within the origin.
#[derive(Debug, Clone)]
pub struct HttpClients {
    guarded: reqwest::Client,
    internal: reqwest::Client,
}

impl HttpClients {
    /// Builds both clients.
    pub fn new() -> Result<HttpClients, reqwest::Error> {
        Ok(HttpClients {
            // No proxy: a proxy would resolve the host itself, past the guard.
            guarded: reqwest::Client::builder()
                .no_proxy()
                .dns_resolver(Arc::new(GuardedResolver))
                .redirect(same_origin_redirects())
                .build()?,
            internal: reqwest::Client::builder()
                .redirect(same_origin_redirects())
                .build()?,
        })
    }

    /// The client `tool` may use.
    pub fn for_tool(&self, tool: &HttpTool) -> &reqwest::Client {
        if tool.allow_internal {
            &self.internal
        } else {
            &self.guarded
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn internal_addresses_are_recognised() {
        for internal in [
            "64:ff9b::a00:5",
            "2002:a00:5::1",
            "::10.0.0.5",
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_internal(internal.parse().unwrap()), "{internal}");
        }
        for external in ["8.8.8.8", "93.184.216.34", "2606:4700::1111", "100.128.0.1"] {
            assert!(!is_internal(external.parse().unwrap()), "{external}");
        }
    }
}
