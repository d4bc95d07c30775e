//! Where printers may be: the operator's allow-list (`--printer-hosts`)
//! and the parsing of a printer's `host:port` address.
//!
//! An entry is a network (`10.0.0.0/8`, `192.168.1.50` — one address — or
//! IPv6 alike) or a host name (`printer.local`). A printer's address is
//! accepted when its host is an IP address inside a listed network, or a
//! listed name. Before every connection the name is resolved again and
//! only addresses that are allowed are dialled: one inside a listed
//! network, or one a listed name resolves to — unless it is loopback,
//! unspecified, multicast or the cloud metadata address, which only a
//! listed network can allow. Nothing is allowed by default.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;

/// The port ESC/POS printers listen on.
pub const DEFAULT_PORT: u16 = 9100;

/// A network: an address and how many leading bits must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    fn contains(&self, ip: IpAddr) -> bool {
        let (network, ip, bits) = match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                (u128::from(net.to_bits()), u128::from(ip.to_bits()), 32)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => (net.to_bits(), ip.to_bits(), 128),
            _ => return false,
        };
        let prefix = u32::from(self.prefix);
        if prefix == 0 {
            return true;
        }
        let shift = bits - prefix;
        network >> shift == ip >> shift
    }
}

/// An IPv4 address mapped into IPv6 (`::ffff:10.0.0.1`) is the IPv4 one.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The hosts printers may be at (the operator's `--printer-hosts`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrinterHosts {
    networks: Vec<Network>,
    /// Lower-case host names.
    names: Vec<String>,
}

impl PrinterHosts {
    /// No host at all: every printer address is refused.
    pub fn none() -> Self {
        PrinterHosts::default()
    }

    /// Whether no host is allowed.
    pub fn is_empty(&self) -> bool {
        self.networks.is_empty() && self.names.is_empty()
    }

    fn in_networks(&self, ip: IpAddr) -> bool {
        self.networks.iter().any(|net| net.contains(ip))
    }

    /// Whether a printer may be added at `host` (already parsed by
    /// [`PrinterAddress::parse`]): an address in a listed network, or a
    /// listed name.
    pub fn allows_host(&self, host: &str) -> bool {
        match host.parse::<IpAddr>() {
            Ok(ip) => self.in_networks(ip),
            Err(_) => self.names.iter().any(|name| name == host),
        }
    }

    /// Whether `ip`, which `host` resolved to, may be dialled.
    pub fn allows_resolved(&self, host: &str, ip: IpAddr) -> bool {
        if self.in_networks(ip) {
            return true;
        }
        let ip = canonical(ip);
        let special = ip.is_loopback()
            || ip.is_unspecified()
            || ip.is_multicast()
            || ip == IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254));
        host.parse::<IpAddr>().is_err() && self.names.iter().any(|name| name == host) && !special
    }

    /// The addresses `host:port` resolves to that may be dialled; an error
    /// saying why when none may.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
        if !self.allows_host(host) {
            return Err(format!("{host} is not among the allowed printer hosts"));
        }
        let found: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|error| format!("cannot resolve {host}: {error}"))?
            .collect();
        let allowed: Vec<SocketAddr> = found
            .iter()
            .copied()
            .filter(|addr| self.allows_resolved(host, addr.ip()))
            .collect();
        match (allowed.is_empty(), found.first()) {
            (false, _) => Ok(allowed),
            (true, Some(first)) => Err(format!(
                "{host} resolves to {}, which the allowed printer hosts do not include",
                first.ip()
            )),
            (true, None) => Err(format!("{host} resolves to no address")),
        }
    }
}

impl FromStr for PrinterHosts {
    type Err = String;

    /// A comma-separated list of networks, addresses and host names.
    fn from_str(list: &str) -> Result<Self, Self::Err> {
        let mut hosts = PrinterHosts::none();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if let Some((addr, prefix)) = entry.split_once('/') {
                let addr: IpAddr = addr
                    .parse()
                    .map_err(|_| format!("`{entry}`: not a network (e.g. 10.0.0.0/8)"))?;
                let max = if addr.is_ipv4() { 32 } else { 128 };
                let prefix: u8 = prefix
                    .parse()
                    .ok()
                    .filter(|p| *p <= max)
                    .ok_or_else(|| format!("`{entry}`: the prefix is 0 to {max}"))?;
                hosts.networks.push(Network { addr, prefix });
            } else if let Ok(addr) = entry.parse::<IpAddr>() {
                let prefix = if addr.is_ipv4() { 32 } else { 128 };
                hosts.networks.push(Network {
                    addr: canonical(addr),
                    prefix,
                });
            } else if is_host_name(entry) {
                hosts.names.push(entry.to_ascii_lowercase());
            } else {
                return Err(format!(
                    "`{entry}`: not a network, an address or a host name"
                ));
            }
        }
        Ok(hosts)
    }
}

impl fmt::Display for PrinterHosts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let networks = self
            .networks
            .iter()
            .map(|n| format!("{}/{}", n.addr, n.prefix));
        let all: Vec<String> = networks.chain(self.names.iter().cloned()).collect();
        f.write_str(&all.join(","))
    }
}

/// Letters, digits, hyphens and dots; at most 253 characters; no empty
/// label.
fn is_host_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 253
        && text.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// A printer's address as the owner typed it: `host`, `host:port`,
/// `[v6]:port` or a bare IPv6 address; port 9100 unless given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrinterAddress {
    /// An IP address or a lower-case host name.
    pub host: String,
    pub port: u16,
}

impl PrinterAddress {
    /// Parses an address; an error says what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest
                .split_once(']')
                .ok_or("an IPv6 address in brackets needs its `]`")?;
            match after {
                "" => (host, None),
                _ => (
                    host,
                    Some(
                        after
                            .strip_prefix(':')
                            .ok_or("`]` is followed by `:port`")?,
                    ),
                ),
            }
        } else if text.matches(':').count() == 1 {
            let (host, port) = text.split_once(':').ok_or("no port")?;
            (host, Some(port))
        } else {
            (text, None)
        };
        let port = match port {
            None => DEFAULT_PORT,
            Some(port) => port
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or("the port is a number from 1 to 65535")?,
        };
        let host = match host.parse::<IpAddr>() {
            Ok(ip) => canonical(ip).to_string(),
            Err(_) if is_host_name(host) => host.to_ascii_lowercase(),
            Err(_) => return Err(format!("`{host}` is not a host name or an IP address")),
        };
        Ok(PrinterAddress { host, port })
    }
}

impl fmt::Display for PrinterAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(list: &str) -> PrinterHosts {
        list.parse().expect("a valid list")
    }

    #[test]
    fn addresses_parse_with_port_9100_by_default() {
        let parse = |text: &str| PrinterAddress::parse(text).map(|a| a.to_string());
        assert_eq!(parse("10.0.0.7").as_deref(), Ok("10.0.0.7:9100"));
        assert_eq!(parse(" 10.0.0.7:9101 ").as_deref(), Ok("10.0.0.7:9101"));
        assert_eq!(parse("Printer.Local").as_deref(), Ok("printer.local:9100"));
        assert_eq!(parse("[fd00::7]:9100").as_deref(), Ok("[fd00::7]:9100"));
        assert_eq!(parse("fd00::7").as_deref(), Ok("[fd00::7]:9100"));
        for bad in [
            "",
            "10.0.0.7:0",
            "10.0.0.7:70000",
            "a b",
            "host:port",
            "[fd00::7",
            "x..y",
        ] {
            assert!(PrinterAddress::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn networks_addresses_and_names_are_allowed_as_listed() {
        let allowed = hosts("10.0.0.0/8, 192.168.1.50,printer.local,fd00::/8");
        assert!(allowed.allows_host("10.20.30.40"));
        assert!(allowed.allows_host("192.168.1.50"));
        assert!(!allowed.allows_host("192.168.1.51"));
        assert!(allowed.allows_host("printer.local"));
        assert!(!allowed.allows_host("other.local"));
        assert!(allowed.allows_host("fd00::7"));
        assert!(!allowed.allows_host("127.0.0.1"));
        assert!(!PrinterHosts::none().allows_host("10.0.0.1"));
        assert!(PrinterHosts::none().is_empty());
        assert!("10.0.0.0/33".parse::<PrinterHosts>().is_err());
        assert!("not a host!".parse::<PrinterHosts>().is_err());
    }

    #[test]
    fn a_listed_name_never_reaches_loopback_or_metadata_unless_a_network_allows_it() {
        let by_name = hosts("printer.local");
        let ip = |text: &str| text.parse::<IpAddr>().expect("an address");
        assert!(by_name.allows_resolved("printer.local", ip("192.168.1.9")));
        assert!(!by_name.allows_resolved("printer.local", ip("127.0.0.1")));
        assert!(!by_name.allows_resolved("printer.local", ip("169.254.169.254")));
        assert!(!by_name.allows_resolved("other.local", ip("192.168.1.9")));
        let with_loopback = hosts("printer.local,127.0.0.0/8");
        assert!(with_loopback.allows_resolved("printer.local", ip("127.0.0.1")));
        assert!(with_loopback.allows_resolved("localhost", ip("::ffff:127.0.0.1")));
    }

    #[tokio::test]
    async fn resolving_keeps_only_allowed_addresses() {
        let local = hosts("localhost");
        let refused = local.resolve("localhost", 9100).await;
        assert!(
            refused
                .as_ref()
                .is_err_and(|why| why.contains("resolves to")),
            "{refused:?}"
        );
        let loopback = hosts("127.0.0.1");
        assert_eq!(
            loopback.resolve("127.0.0.1", 9100).await,
            Ok(vec![SocketAddr::from(([127, 0, 0, 1], 9100))])
        );
        assert!(loopback.resolve("10.0.0.1", 9100).await.is_err());
    }
}
