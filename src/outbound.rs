//! Outbound safety for URLs that tenants supply (provider base URLs, MCP servers): a URL whose host is
//! or resolves to a loopback, private, link-local or metadata address is refused, unless the operator
//! allows that host or network with `SWITCHBOARD_OUTBOUND_ALLOW`.

use std::net::{IpAddr, SocketAddr};

#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("not a valid http(s) URL")]
    InvalidUrl,
    #[error("the host {0} could not be resolved")]
    Unresolvable(String),
    #[error("the host {0} is a loopback, private, link-local or metadata address; the operator has not allowed it")]
    Forbidden(String),
}

/// Hosts and networks the operator allows although they are private.
#[derive(Debug, Clone, Default)]
pub struct OutboundPolicy {
    allowed: Vec<String>,
}

impl OutboundPolicy {
    pub fn new(allowed: &[String]) -> Self {
        Self { allowed: allowed.iter().map(|entry| entry.trim().to_ascii_lowercase()).collect() }
    }

    /// Checks a URL before it is stored or called.
    pub async fn check(&self, url: &str) -> Result<(), OutboundError> {
        let parsed = reqwest::Url::parse(url).map_err(|_| OutboundError::InvalidUrl)?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(OutboundError::InvalidUrl);
        }
        let host = parsed.host_str().ok_or(OutboundError::InvalidUrl)?.trim_matches(['[', ']']).to_ascii_lowercase();
        if self.allowed.contains(&host) {
            return Ok(());
        }
        let port = parsed.port_or_known_default().unwrap_or(443);
        let addresses: Vec<IpAddr> = match host.parse::<IpAddr>() {
            Ok(address) => vec![address],
            Err(_) => tokio::net::lookup_host((host.as_str(), port))
                .await
                .map_err(|_| OutboundError::Unresolvable(host.clone()))?
                .map(|socket| socket.ip())
                .collect(),
        };
        if addresses.is_empty() {
            return Err(OutboundError::Unresolvable(host));
        }
        for address in addresses {
            if is_internal(address) && !self.allows(address) {
                return Err(OutboundError::Forbidden(host));
            }
        }
        Ok(())
    }

    fn allows(&self, address: IpAddr) -> bool {
        self.allowed.iter().any(|entry| match entry.split_once('/') {
            None => entry.parse::<IpAddr>() == Ok(address),
            Some((network, bits)) => match (network.parse::<IpAddr>(), bits.parse::<u32>()) {
                (Ok(network), Ok(bits)) => in_network(address, network, bits),
                _ => false,
            },
        })
    }
}

/// A DNS resolver for clients that reach tenant-supplied hosts: it drops every internal address the
/// operator has not allowed, at the moment of connecting, so a name that resolved to a public address
/// when it was saved cannot be re-pointed at an internal one later (DNS rebinding). IP literals never
/// reach a resolver; they were checked when saved and cannot change.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    policy: OutboundPolicy,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_ascii_lowercase();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let host_allowed = policy.allowed.contains(&host);
            let usable: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|socket| host_allowed || !is_internal(socket.ip()) || policy.allows(socket.ip()))
                .collect();
            if usable.is_empty() {
                return Err(Box::new(OutboundError::Forbidden(host)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(usable.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

impl OutboundPolicy {
    /// The resolver that enforces this policy when connecting.
    pub fn resolver(&self) -> std::sync::Arc<GuardedResolver> {
        std::sync::Arc::new(GuardedResolver { policy: self.clone() })
    }
}

fn in_network(address: IpAddr, network: IpAddr, bits: u32) -> bool {
    match (address, network) {
        (IpAddr::V4(address), IpAddr::V4(network)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(address) & mask == u32::from(network) & mask
        }
        (IpAddr::V6(address), IpAddr::V6(network)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(address) & mask == u128::from(network) & mask
        }
        _ => false,
    }
}

fn is_internal(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.octets()[0] == 100 && (64..128).contains(&v4.octets()[1]) // carrier-grade NAT
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || (v6.segments()[0] & 0xfe00) == 0xfc00 // unique local
                || (v6.segments()[0] & 0xffc0) == 0xfe80 // link local
                || v6.to_ipv4_mapped().is_some_and(|v4| is_internal(IpAddr::V4(v4)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn internal_addresses_are_refused_unless_allowed() {
        let strict = OutboundPolicy::default();
        for url in [
            "http://127.0.0.1:8080/v1",
            "http://10.1.2.3/",
            "http://192.168.0.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]:9000/",
            "http://[::ffff:127.0.0.1]/",
            "http://localhost:1234/",
        ] {
            assert!(matches!(strict.check(url).await, Err(OutboundError::Forbidden(_))), "{url}");
        }
        assert!(matches!(strict.check("ftp://example.com/").await, Err(OutboundError::InvalidUrl)));
        assert!(matches!(strict.check("not a url").await, Err(OutboundError::InvalidUrl)));
        assert!(strict.check("http://93.184.216.34/").await.is_ok());

        let allowed = OutboundPolicy::new(&["127.0.0.1".to_owned(), "10.0.0.0/8".to_owned()]);
        assert!(allowed.check("http://127.0.0.1:8080/v1").await.is_ok());
        assert!(allowed.check("http://10.200.0.1/").await.is_ok());
        assert!(allowed.check("http://192.168.0.1/").await.is_err());
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_of_internal_addresses_when_connecting() {
        use reqwest::dns::Resolve as _;
        let name = |host: &str| host.parse::<reqwest::dns::Name>().unwrap();
        let strict = OutboundPolicy::default().resolver();
        assert!(strict.resolve(name("localhost")).await.is_err());
        let allowed = OutboundPolicy::new(&["127.0.0.1".to_owned()]).resolver();
        let addresses: Vec<SocketAddr> = allowed.resolve(name("localhost")).await.unwrap().collect();
        assert!(addresses.iter().all(|address| address.ip().is_loopback() && address.is_ipv4()), "{addresses:?}");
    }
}
