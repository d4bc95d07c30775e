//! Where webhooks may go: never to this machine, a private network, a
//! link-local or cloud metadata address, or anything else that is not a
//! public unicast address — unless the operator allows private addresses
//! (`--webhooks-allow-private`). Checked on the addresses a host name
//! resolves to, when an endpoint is added and again on every delivery (the
//! HTTP client resolves through [`GuardedResolver`], so what is checked is
//! what is connected to, whatever DNS answers later).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Whether `ip` is a public unicast address a webhook may be sent to.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || a == 0 // "this network"
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // 169.254/16, the cloud metadata address among them
        || (a == 100 && (64..128).contains(&b)) // shared address space (carrier NAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || ip.is_documentation()
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || ip.is_multicast()
        || a >= 240) // reserved, broadcast
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let segments = ip.segments();
    // NAT64 (64:ff9b::/96) reaches the IPv4 address in its last 32 bits.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [.., hi, lo] = segments;
        return is_public_v4(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)));
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || (segments[0] & 0xfe00) == 0xfc00 // unique local, fd00:ec2::254 among them
        || (segments[0] & 0xffc0) == 0xfe80 // link-local
        || (segments[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || ip.is_multicast()
        || (segments[0] == 0x2001 && segments[1] == 0x0db8) // documentation
        || segments[..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible (deprecated)
}

/// Why a host may not get webhooks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The host name did not resolve.
    #[error("{host} does not resolve: {reason}")]
    Unresolved { host: String, reason: String },
    /// It resolves to an address that is not public.
    #[error("{host} resolves to {address}, which is not a public address")]
    NotPublic { host: String, address: IpAddr },
}

/// How long a name may take to resolve.
const RESOLVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The addresses `host` (a name or an IP literal) resolves to on `port`,
/// all of them public unless `allow_private`.
pub async fn resolve(
    host: &str, port: u16, allow_private: bool,
) -> Result<Vec<SocketAddr>, Refusal> {
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    let addresses: Vec<SocketAddr> = match literal.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => {
            match tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, port))).await
            {
                Ok(Ok(found)) => found.collect(),
                Ok(Err(error)) => {
                    return Err(Refusal::Unresolved {
                        host: host.to_owned(),
                        reason: error.to_string(),
                    });
                }
                Err(_) => {
                    return Err(Refusal::Unresolved {
                        host: host.to_owned(),
                        reason: format!("no answer within {} s", RESOLVE_TIMEOUT.as_secs()),
                    });
                }
            }
        }
    };
    if addresses.is_empty() {
        return Err(Refusal::Unresolved {
            host: host.to_owned(),
            reason: "no addresses".into(),
        });
    }
    if !allow_private && let Some(bad) = addresses.iter().find(|a| !is_public(a.ip())) {
        return Err(Refusal::NotPublic {
            host: host.to_owned(),
            address: bad.ip(),
        });
    }
    Ok(addresses)
}

/// The HTTP client's resolver: a name resolving to any address that is
/// not public fails to resolve (unless private addresses are allowed).
pub struct GuardedResolver {
    pub allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addresses = resolve(&host, 0, allow_private).await?;
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(text: &str) -> bool {
        is_public(text.parse().expect("an address"))
    }

    #[test]
    fn only_public_unicast_addresses_pass() {
        for refused in [
            "127.0.0.1",
            "127.8.9.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "ff02::1",
        ] {
            assert!(!public(refused), "{refused} must be refused");
        }
        for allowed in ["93.184.215.14", "1.1.1.1", "172.32.0.1", "2606:4700::1111"] {
            assert!(public(allowed), "{allowed} is public");
        }
    }

    #[tokio::test]
    async fn names_are_checked_on_what_they_resolve_to() {
        assert!(matches!(
            resolve("localhost", 80, false).await,
            Err(Refusal::NotPublic { .. })
        ));
        assert!(resolve("localhost", 80, true).await.is_ok());
        assert!(matches!(
            resolve("[::1]", 80, false).await,
            Err(Refusal::NotPublic { .. })
        ));
    }
}
