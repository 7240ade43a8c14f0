//! Outbound safety for URLs that tenants supply (provider base URLs, MCP servers): a URL whose host is or
//! resolves to an address that is not globally reachable (IANA's special-purpose registries, the IPv6
//! transition forms judged by the IPv4 address they carry, cloud metadata services) is refused, unless the
//! operator allows that host or network with `SWITCHBOARD_OUTBOUND_ALLOW`; and a URL carrying a credential
//! is refused before it is stored, since a URL is kept and shown in the clear.

mod addresses;

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use addresses::{in_network, refusal};

#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("not a valid http(s) URL")]
    InvalidUrl,
    #[error("the host {0} could not be resolved")]
    Unresolvable(String),
    /// An IP literal: the reason names the tenant's own input, so it can be shown.
    #[error("the host {host} is not a public address ({reason}); the operator has not allowed it")]
    Forbidden { host: String, reason: String },
    /// A name: which internal address it resolves to is not said, so the check is no oracle for the
    /// operator's internal DNS.
    #[error(
        "the host {0} resolves to an address that is not public (loopback, private, link-local, metadata or \
         another special-purpose address); the operator has not allowed it"
    )]
    ResolvesInside(String),
    #[error("the URL carries a credential ({0})")]
    Credential(UrlCredential),
}

/// Where a URL carries a secret. Never the secret itself: this is shown to the tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlCredential {
    /// `user:password@` before the host.
    UserInfo,
    /// A query parameter whose name says it holds a secret (`api_key`, `token`, `sig`, …), by that name.
    QueryParameter(String),
}

impl fmt::Display for UrlCredential {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UserInfo => formatter.write_str("a user name or password before the host"),
            Self::QueryParameter(name) => write!(formatter, "the query parameter `{name}`"),
        }
    }
}

/// Hosts and networks the operator allows although they are not public.
#[derive(Debug, Clone, Default)]
pub struct OutboundPolicy {
    allowed: Vec<String>,
}

impl OutboundPolicy {
    pub fn new(allowed: &[String]) -> Self {
        Self { allowed: allowed.iter().map(|entry| entry.trim().to_ascii_lowercase()).collect() }
    }

    /// Checks a URL a tenant is about to store: no credential in it (checked first, so a refused URL is
    /// never looked up in DNS either), then its destination as [`Self::check`] does.
    pub async fn check_before_saving(&self, url: &str) -> Result<(), OutboundError> {
        let parsed = parse(url)?;
        if let Some(found) = credential_in(&parsed) {
            return Err(OutboundError::Credential(found));
        }
        self.check_destination(&parsed).await
    }

    /// Checks a URL's destination before it is stored or called: an IP literal is judged as it is, a name by
    /// every address it resolves to now.
    pub async fn check(&self, url: &str) -> Result<(), OutboundError> {
        self.check_destination(&parse(url)?).await
    }

    /// The check a client built with [`Self::resolver`] needs before every request: an IP literal never
    /// reaches a resolver, so it is judged here (names are left to the resolver, which sees every
    /// connection). Such clients follow no redirects, so the request's URL is its only destination.
    pub fn check_when_connecting(&self, url: &reqwest::Url) -> Result<(), OutboundError> {
        let host = host_of(url)?;
        match host.parse::<IpAddr>() {
            Ok(address) => self.judge_literal(&host, address),
            Err(_) => Ok(()),
        }
    }

    async fn check_destination(&self, url: &reqwest::Url) -> Result<(), OutboundError> {
        let host = host_of(url)?;
        if let Ok(address) = host.parse::<IpAddr>() {
            return self.judge_literal(&host, address);
        }
        if self.allowed.contains(&host) {
            return Ok(());
        }
        let port = url.port_or_known_default().unwrap_or(443);
        let addresses: Vec<IpAddr> = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|_| OutboundError::Unresolvable(host.clone()))?
            .map(|socket| socket.ip())
            .collect();
        if addresses.is_empty() {
            return Err(OutboundError::Unresolvable(host));
        }
        if addresses.into_iter().any(|address| !self.may_reach(address)) {
            return Err(OutboundError::ResolvesInside(host));
        }
        Ok(())
    }

    fn judge_literal(&self, host: &str, address: IpAddr) -> Result<(), OutboundError> {
        if self.allowed.iter().any(|entry| entry == host) || self.allows(address) {
            return Ok(());
        }
        match refusal(address) {
            Some(reason) => Err(OutboundError::Forbidden { host: host.to_owned(), reason }),
            None => Ok(()),
        }
    }

    /// A resolved address may be connected to: it is public, or the operator allows it.
    fn may_reach(&self, address: IpAddr) -> bool {
        refusal(address).is_none() || self.allows(address)
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

fn parse(url: &str) -> Result<reqwest::Url, OutboundError> {
    let parsed = reqwest::Url::parse(url).map_err(|_| OutboundError::InvalidUrl)?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(OutboundError::InvalidUrl);
    }
    Ok(parsed)
}

/// The host as the allow-list names it: lowercase, an IPv6 literal without its brackets. The URL parser
/// has already turned every spelling of an IPv4 address (`0x7f.1`, `2130706433`) into dotted decimal.
fn host_of(url: &reqwest::Url) -> Result<String, OutboundError> {
    Ok(url.host_str().ok_or(OutboundError::InvalidUrl)?.trim_matches(['[', ']']).to_ascii_lowercase())
}

/// A credential written into the URL: user information, or a query parameter named like a secret.
fn credential_in(url: &reqwest::Url) -> Option<UrlCredential> {
    if !url.username().is_empty() || url.password().is_some() {
        return Some(UrlCredential::UserInfo);
    }
    url.query_pairs()
        .find(|(name, _)| names_a_secret(name))
        .map(|(name, _)| UrlCredential::QueryParameter(name.chars().take(50).collect()))
}

/// Whether a query parameter's name says it holds a secret. Separators and case are ignored
/// (`api_key`, `API-Key`, `apiKey`), and a name ending in a secret word counts (`client_secret`,
/// `x-goog-api-key`, `X-Amz-Signature`): a false alarm costs a tenant one rewritten URL, a miss a
/// secret stored in the clear.
fn names_a_secret(name: &str) -> bool {
    const WHOLE: [&str; 7] = ["sig", "pwd", "pass", "auth", "authorization", "jwt", "bearer"];
    const ENDINGS: [&str; 8] =
        ["key", "token", "secret", "password", "passwd", "signature", "credential", "credentials"];
    let squashed: String =
        name.chars().filter(char::is_ascii_alphanumeric).map(|letter| letter.to_ascii_lowercase()).collect();
    WHOLE.contains(&squashed.as_str()) || ENDINGS.iter().any(|ending| squashed.ends_with(ending))
}

/// A DNS resolver for clients that reach tenant-supplied hosts: it drops every address the operator has
/// not allowed and that is not public, at the moment of connecting, so a name that resolved to a public
/// address when it was saved cannot be re-pointed at an internal one later (DNS rebinding). IP literals
/// never reach a resolver: see [`OutboundPolicy::check_when_connecting`].
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
            let usable: Vec<SocketAddr> =
                resolved.into_iter().filter(|socket| host_allowed || policy.may_reach(socket.ip())).collect();
            if usable.is_empty() {
                return Err(Box::new(OutboundError::ResolvesInside(host)) as Box<dyn std::error::Error + Send + Sync>);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_purpose_addresses_are_refused_with_their_reason() {
        let refused = [
            // IPv4 special-purpose registry.
            ("0.0.0.0", "this network"),
            ("0.1.2.3", "this network"),
            ("10.1.2.3", "private-use"),
            ("100.64.0.1", "shared address space"),
            ("100.127.255.254", "shared address space"),
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("169.254.169.254", "link-local"),
            ("172.16.0.1", "private-use"),
            ("172.31.255.255", "private-use"),
            ("192.0.0.192", "IETF protocol assignments"),
            ("192.0.0.9", "IETF protocol assignments"),
            ("192.0.2.10", "documentation"),
            ("192.88.99.1", "6to4 relay"),
            ("192.168.1.1", "private-use"),
            ("198.18.0.1", "benchmarking"),
            ("198.19.255.255", "benchmarking"),
            ("198.51.100.7", "documentation"),
            ("203.0.113.7", "documentation"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("240.0.0.1", "reserved"),
            ("255.255.255.255", "limited broadcast"),
            // Cloud metadata outside those blocks, or named apart inside them.
            ("168.63.129.16", "metadata"),
            ("100.100.100.200", "metadata"),
            // IPv6 special-purpose registry and the deprecated blocks.
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("::ffff:8.8.8.8", "IPv4-mapped"),
            ("::8.8.8.8", "IPv4-compatible"),
            ("64:ff9b:1::808:808", "local-use IPv4/IPv6 translation"),
            ("100::1", "discard-only"),
            ("2001::1", "Teredo"),
            ("2001:2::1", "benchmarking"),
            ("2001:10::1", "ORCHID"),
            ("2001:20::1", "ORCHIDv2"),
            ("2001:1::1", "IETF protocol assignments"),
            ("2001:db8::1", "documentation"),
            ("3fff::1", "documentation"),
            ("5f00::1", "SRv6"),
            ("fd00:ec2::254", "metadata"),
            ("fc00::1", "unique local"),
            ("fd12:3456::1", "unique local"),
            ("fe80::1", "link-local"),
            ("fec0::1", "site-local"),
            ("ff02::1", "multicast"),
            ("4000::1", "reserved"),
            // Transition forms, judged by the IPv4 address they carry.
            ("::127.0.0.1", "IPv4-compatible form of 127.0.0.1, loopback"),
            ("::ffff:127.0.0.1", "IPv4-mapped form of 127.0.0.1, loopback"),
            ("::ffff:169.254.169.254", "IPv4-mapped form of 169.254.169.254"),
            ("64:ff9b::7f00:1", "NAT64 form of 127.0.0.1, loopback"),
            ("64:ff9b::a9fe:a9fe", "NAT64 form of 169.254.169.254, link-local"),
            ("64:ff9b::a00:1", "NAT64 form of 10.0.0.1, private-use"),
            ("2002:7f00:1::", "6to4 form of 127.0.0.1, loopback"),
            ("2002:a9fe:a9fe::1", "6to4 form of 169.254.169.254"),
            ("2002:c0a8:101::", "6to4 form of 192.168.1.1"),
            // Teredo's client 127.0.0.1, stored inverted: !0x7f000001 = 0x80fffffe.
            ("2001:0:4136:e378:8000:63bf:80ff:fffe", "Teredo form of 127.0.0.1, loopback"),
        ];
        for (address, reason) in refused {
            let found = refusal(address.parse().unwrap());
            assert!(found.as_deref().is_some_and(|found| found.contains(reason)), "{address}: {found:?}");
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        for address in [
            "8.8.8.8",
            "1.1.1.1",
            "93.184.216.34",
            "100.63.255.255",
            "100.128.0.0",
            "172.32.0.1",
            "192.0.1.1",
            "198.20.0.1",
            "223.255.255.255",
            "2606:4700::1111",
            "2a00:1450:4001:80b::200e",
            // 6to4 and NAT64 of a public address: the IPv4 address they carry decides.
            "2002:0808:0808::",
            "2002:808:808::1",
            "64:ff9b::808:808",
        ] {
            assert_eq!(refusal(address.parse().unwrap()), None, "{address}");
        }
    }

    #[tokio::test]
    async fn urls_of_internal_addresses_are_refused_unless_allowed() {
        let strict = OutboundPolicy::default();
        for url in [
            "http://127.0.0.1:8080/v1",
            "http://10.1.2.3/",
            "http://192.168.0.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]:9000/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::127.0.0.1]/",
            "http://[64:ff9b::7f00:1]/",
            "http://[64:ff9b::a9fe:a9fe]/",
            "http://[2002:7f00:1::]/",
            "http://[fec0::1]/",
            "http://[fd00:ec2::254]/",
            "http://192.0.0.192/",
            "http://198.18.0.1/",
            "http://224.0.0.1/",
            "http://240.0.0.1/",
            "http://168.63.129.16/",
            // Other spellings of 127.0.0.1, which the URL parser normalises.
            "http://2130706433/",
            "http://0x7f.1/",
            "http://127.1/",
        ] {
            assert!(matches!(strict.check(url).await, Err(OutboundError::Forbidden { .. })), "{url}");
            let parsed = reqwest::Url::parse(url).unwrap();
            assert!(matches!(strict.check_when_connecting(&parsed), Err(OutboundError::Forbidden { .. })), "{url}");
        }
        assert!(matches!(strict.check("http://localhost:1234/").await, Err(OutboundError::ResolvesInside(_))));
        assert!(matches!(strict.check("ftp://example.com/").await, Err(OutboundError::InvalidUrl)));
        assert!(matches!(strict.check("not a url").await, Err(OutboundError::InvalidUrl)));
        for url in ["http://93.184.216.34/", "https://[2606:4700::1111]/v1", "http://[2002:0808:0808::]/"] {
            assert!(strict.check(url).await.is_ok(), "{url}");
            assert!(strict.check_when_connecting(&reqwest::Url::parse(url).unwrap()).is_ok(), "{url}");
        }
        // Names are the resolver's to judge when connecting.
        assert!(strict.check_when_connecting(&reqwest::Url::parse("http://localhost/").unwrap()).is_ok());

        let allowed = OutboundPolicy::new(&["127.0.0.1".to_owned(), "10.0.0.0/8".to_owned(), "fd00::/8".to_owned()]);
        assert!(allowed.check("http://127.0.0.1:8080/v1").await.is_ok());
        assert!(allowed.check("http://10.200.0.1/").await.is_ok());
        assert!(allowed.check("http://[fd00::7]/").await.is_ok());
        assert!(allowed.check_when_connecting(&reqwest::Url::parse("http://127.0.0.1:9/").unwrap()).is_ok());
        assert!(allowed.check("http://192.168.0.1/").await.is_err());
        // Allowing an IPv4 address does not allow its IPv6 forms: the operator names what it means.
        assert!(allowed.check("http://[64:ff9b::7f00:1]/").await.is_err());
    }

    #[tokio::test]
    async fn credentials_in_a_url_are_refused_before_it_is_stored() {
        let policy = OutboundPolicy::default();
        let refused = [
            ("http://user:pw@93.184.216.34/", UrlCredential::UserInfo),
            ("http://user@93.184.216.34/", UrlCredential::UserInfo),
            ("http://:pw@93.184.216.34/", UrlCredential::UserInfo),
            ("https://93.184.216.34/v1?api_key=x", UrlCredential::QueryParameter("api_key".into())),
            ("https://93.184.216.34/v1?key=x", UrlCredential::QueryParameter("key".into())),
            ("https://93.184.216.34/v1?a=1&apikey=x", UrlCredential::QueryParameter("apikey".into())),
            ("https://93.184.216.34/v1?API-Key=x", UrlCredential::QueryParameter("API-Key".into())),
            ("https://93.184.216.34/v1?token=x", UrlCredential::QueryParameter("token".into())),
            ("https://93.184.216.34/v1?access_token=x", UrlCredential::QueryParameter("access_token".into())),
            ("https://93.184.216.34/v1?secret=x", UrlCredential::QueryParameter("secret".into())),
            ("https://93.184.216.34/v1?client_secret=x", UrlCredential::QueryParameter("client_secret".into())),
            ("https://93.184.216.34/v1?password=x", UrlCredential::QueryParameter("password".into())),
            ("https://93.184.216.34/v1?sig=x", UrlCredential::QueryParameter("sig".into())),
            ("https://93.184.216.34/v1?signature=x", UrlCredential::QueryParameter("signature".into())),
            ("https://93.184.216.34/v1?X-Amz-Signature=x", UrlCredential::QueryParameter("X-Amz-Signature".into())),
            ("https://93.184.216.34/v1?subscription-key=x", UrlCredential::QueryParameter("subscription-key".into())),
            // Percent-encoding does not hide a name.
            ("https://93.184.216.34/v1?api%5Fkey=x", UrlCredential::QueryParameter("api_key".into())),
            // Checked before the destination: a refused URL is not even looked up.
            ("http://user:pw@127.0.0.1/", UrlCredential::UserInfo),
            ("http://no-such-host.invalid/?token=x", UrlCredential::QueryParameter("token".into())),
        ];
        for (url, expected) in refused {
            match policy.check_before_saving(url).await {
                Err(OutboundError::Credential(found)) => assert_eq!(found, expected, "{url}"),
                other => panic!("{url}: {other:?}"),
            }
        }
        for url in [
            "https://93.184.216.34/v1",
            "https://93.184.216.34/openai/deployments/gpt?api-version=2024-10-21",
            "https://93.184.216.34/v1?model=x&region=eu&keyboard=1",
        ] {
            assert!(policy.check_before_saving(url).await.is_ok(), "{url}");
        }
        let shown = OutboundError::Credential(UrlCredential::UserInfo).to_string();
        assert!(!shown.contains("pw") && !shown.contains("user:"), "{shown}");
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
