#pragma once

// Who the client of a request is: the TCP peer, or, when that peer is one of our own reverse
// proxies, the address the proxies recorded in X-Forwarded-For. Pure functions, unit-tested.

#include <boost/asio/ip/address.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace parley::net {

/// An IPv4 or IPv6 network such as 10.0.0.0/8 or fd00::/8; a plain address is a /32 or /128.
struct ip_network {
  boost::asio::ip::address base;
  unsigned prefix_length = 0;

  /// True if `addr` lies inside this network (IPv4-mapped IPv6 addresses count as IPv4).
  bool contains(const boost::asio::ip::address& addr) const;
};

/// Parses "192.168.1.10", "10.0.0.0/8", "::1" or "2001:db8::/32"; nullopt when malformed.
std::optional<ip_network> parse_network(std::string_view text);

/// The IPv4 address inside an IPv4-mapped IPv6 address (::ffff:a.b.c.d), else `addr` itself, so
/// that one client has one key whether the listener is bound to IPv4 or dual-stack IPv6.
boost::asio::ip::address unmapped(const boost::asio::ip::address& addr);

/// The key the per-address limits count a client under: an IPv4 address as it is, an IPv6
/// address by its /64 prefix, the smallest block one subscriber usually gets (one host can pick
/// any address inside it).
boost::asio::ip::address limit_key(const boost::asio::ip::address& addr);

/// The reverse proxies whose X-Forwarded-For we believe ([server] trusted_proxies).
class trusted_proxies {
public:
  trusted_proxies() = default;

  /// Parses every entry; the malformed ones are listed in `invalid` and ignored.
  trusted_proxies(const std::vector<std::string>& entries, std::vector<std::string>& invalid);

  bool trusts(const boost::asio::ip::address& addr) const;
  bool empty() const noexcept { return networks_.empty(); }

private:
  std::vector<ip_network> networks_;
};

/// The client address of a request that arrived from `peer` with these X-Forwarded-For header
/// values (in the order they appear; several headers count as one comma-separated list).
///
/// The header is believed only as far as trusted proxies wrote it: starting at the TCP peer, the
/// list is walked from the right while the current hop is trusted; the first untrusted address is
/// the client. A malformed entry ends the walk at the last trusted hop, which then counts as the
/// client: garbage cannot make a request look like it came from somewhere else. Without a trusted
/// peer the header is ignored.
boost::asio::ip::address client_address(const boost::asio::ip::address& peer,
                                        const std::vector<std::string_view>& forwarded_for,
                                        const trusted_proxies& proxies);

} // namespace parley::net
