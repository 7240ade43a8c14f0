//! Which addresses are not globally reachable: the IANA IPv4 and IPv6 special-purpose registries, cloud
//! metadata services, and the IPv6 transition forms judged by the IPv4 address they carry.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub(super) fn in_network(address: IpAddr, network: IpAddr, bits: u32) -> bool {
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

/// IPv4 blocks that are not globally reachable (IANA's IPv4 special-purpose address registry, plus
/// multicast and the cloud metadata addresses outside it), most specific first so a refusal names the
/// narrowest reason. 192.0.0.0/24 is refused whole, although two anycast addresses in it are public: no
/// model or tool server lives there, and Oracle Cloud's metadata service (192.0.0.192) does.
const IPV4_BLOCKS: [(Ipv4Addr, u32, &str); 18] = [
    (Ipv4Addr::new(168, 63, 129, 16), 32, "a cloud provider's metadata and wire server"),
    // Inside shared address space already; named apart so the reason says what answers there.
    (Ipv4Addr::new(100, 100, 100, 200), 32, "a cloud provider's metadata service"),
    (Ipv4Addr::UNSPECIFIED, 8, "\"this network\""),
    (Ipv4Addr::new(10, 0, 0, 0), 8, "private-use"),
    (Ipv4Addr::new(100, 64, 0, 0), 10, "shared address space (carrier-grade NAT)"),
    (Ipv4Addr::new(127, 0, 0, 0), 8, "loopback"),
    (Ipv4Addr::new(169, 254, 0, 0), 16, "link-local, where cloud metadata services answer"),
    (Ipv4Addr::new(172, 16, 0, 0), 12, "private-use"),
    (Ipv4Addr::new(192, 0, 0, 0), 24, "IETF protocol assignments"),
    (Ipv4Addr::new(192, 0, 2, 0), 24, "documentation (TEST-NET-1)"),
    (Ipv4Addr::new(192, 88, 99, 0), 24, "deprecated 6to4 relay anycast"),
    (Ipv4Addr::new(192, 168, 0, 0), 16, "private-use"),
    (Ipv4Addr::new(198, 18, 0, 0), 15, "benchmarking"),
    (Ipv4Addr::new(198, 51, 100, 0), 24, "documentation (TEST-NET-2)"),
    (Ipv4Addr::new(203, 0, 113, 0), 24, "documentation (TEST-NET-3)"),
    (Ipv4Addr::new(224, 0, 0, 0), 4, "multicast"),
    (Ipv4Addr::BROADCAST, 32, "limited broadcast"),
    (Ipv4Addr::new(240, 0, 0, 0), 4, "reserved"),
];

/// IPv6 blocks that are not globally reachable (IANA's IPv6 special-purpose address registry, the
/// deprecated site-local and IPv4-compatible blocks, multicast, a cloud metadata address), most specific
/// first. Absent on purpose: NAT64's well-known prefix 64:ff9b::/96 (globally reachable in the registry;
/// a DNS64 network gives it to every public name) and 6to4's 2002::/16, both judged by the IPv4 address
/// they carry instead. 2001::/23 is refused whole, although a few anycast services in it are public: no
/// model or tool server lives there.
const IPV6_BLOCKS: [(Ipv6Addr, u32, &str); 19] = [
    (Ipv6Addr::UNSPECIFIED, 128, "unspecified"),
    (Ipv6Addr::LOCALHOST, 128, "loopback"),
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), 96, "IPv4-mapped"),
    (Ipv6Addr::UNSPECIFIED, 96, "IPv4-compatible (deprecated)"),
    (Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48, "local-use IPv4/IPv6 translation"),
    (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64, "discard-only"),
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 32, "Teredo"),
    (Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0), 48, "benchmarking"),
    (Ipv6Addr::new(0x2001, 0x10, 0, 0, 0, 0, 0, 0), 28, "ORCHID (deprecated)"),
    (Ipv6Addr::new(0x2001, 0x20, 0, 0, 0, 0, 0, 0), 28, "ORCHIDv2"),
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23, "IETF protocol assignments"),
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32, "documentation"),
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20, "documentation"),
    (Ipv6Addr::new(0x5f00, 0, 0, 0, 0, 0, 0, 0), 16, "segment routing (SRv6) SIDs"),
    (Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254), 128, "a cloud provider's metadata service"),
    (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7, "unique local"),
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10, "link-local"),
    (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10, "site-local (deprecated)"),
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8, "multicast"),
];

fn ipv4_block(address: Ipv4Addr) -> Option<&'static str> {
    IPV4_BLOCKS
        .iter()
        .find(|(network, bits, _)| in_network(IpAddr::V4(address), IpAddr::V4(*network), *bits))
        .map(|(_, _, name)| *name)
}

fn ipv6_block(address: Ipv6Addr) -> Option<&'static str> {
    let listed = IPV6_BLOCKS
        .iter()
        .find(|(network, bits, _)| in_network(IpAddr::V6(address), IpAddr::V6(*network), *bits))
        .map(|(_, _, name)| *name);
    // Everything outside global unicast (2000::/3) is reserved by the IETF, NAT64's prefix aside.
    let nat64 = Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0);
    let global_unicast = Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0);
    let outside = !in_network(IpAddr::V6(address), IpAddr::V6(global_unicast), 3)
        && !in_network(IpAddr::V6(address), IpAddr::V6(nat64), 96);
    listed.or(outside.then_some("reserved by the IETF"))
}

/// The IPv4 address an IPv6 transition form carries, with the form's name: where a packet to that IPv6
/// address ends up, through the host's own stack, a NAT64 gateway, a 6to4 relay or a Teredo client.
fn carried_ipv4(address: Ipv6Addr) -> Option<(&'static str, Ipv4Addr)> {
    let [.., a, b, c, d] = address.octets();
    let last = Ipv4Addr::new(a, b, c, d);
    let joined = |high: u16, low: u16| (u32::from(high) << 16) | u32::from(low);
    match address.segments() {
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(("IPv4-mapped", last)),
        // `::` and `::1` are themselves, not IPv4-compatible forms of 0.0.0.0 and 0.0.0.1.
        [0, 0, 0, 0, 0, 0, high, low] if joined(high, low) > 1 => Some(("IPv4-compatible", last)),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(("NAT64", last)),
        [0x2002, high, low, ..] => Some(("6to4", Ipv4Addr::from(joined(high, low)))),
        // Teredo stores its client's address inverted, so it passes NATs untouched.
        [0x2001, 0, .., high, low] => Some(("Teredo", Ipv4Addr::from(!joined(high, low)))),
        _ => None,
    }
}

/// Why an address may not be reached, or `None` when it is globally reachable. An IPv6 transition form is
/// judged by the IPv4 address it carries as well as by its own block, and named by the former when that is
/// the reason.
pub(super) fn refusal(address: IpAddr) -> Option<String> {
    match address {
        IpAddr::V4(address) => ipv4_block(address).map(str::to_owned),
        IpAddr::V6(address) => {
            let carried = carried_ipv4(address).and_then(|(form, inner)| Some((form, inner, ipv4_block(inner)?)));
            match carried {
                Some((form, inner, block)) => Some(format!("{form} form of {inner}, {block}")),
                None => ipv6_block(address).map(str::to_owned),
            }
        }
    }
}
