#include "net/client_address.hpp"

#include <algorithm>
#include <array>
#include <charconv>

namespace parley::net {

namespace ip = boost::asio::ip;

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

std::optional<ip::address> parse_address(std::string_view text) {
  boost::system::error_code ec;
  auto addr = ip::make_address(std::string{text}, ec);
  if (ec)
    return std::nullopt;
  return unmapped(addr);
}

/// One X-Forwarded-For entry: an address, possibly with a port ("1.2.3.4:80", "[::1]:80") as some
/// proxies write it.
std::optional<ip::address> parse_forwarded_entry(std::string_view entry) {
  entry = trim(entry);
  if (!entry.empty() && entry.front() == '[') {
    auto close = entry.find(']');
    if (close == std::string_view::npos)
      return std::nullopt;
    return parse_address(entry.substr(1, close - 1));
  }
  // Exactly one colon: IPv4 with a port. More colons: a bare IPv6 address.
  if (std::count(entry.begin(), entry.end(), ':') == 1)
    entry = entry.substr(0, entry.find(':'));
  return parse_address(entry);
}

template <std::size_t N>
bool same_prefix(const std::array<unsigned char, N>& a, const std::array<unsigned char, N>& b,
                 unsigned bits) {
  for (std::size_t i = 0; i < N && bits > 0; ++i) {
    unsigned take = std::min(bits, 8u);
    auto mask = static_cast<unsigned char>(0xFF << (8 - take));
    if ((a[i] & mask) != (b[i] & mask))
      return false;
    bits -= take;
  }
  return true;
}

} // namespace

ip::address unmapped(const ip::address& addr) {
  if (addr.is_v6() && addr.to_v6().is_v4_mapped())
    return ip::make_address_v4(ip::v4_mapped, addr.to_v6());
  return addr;
}

ip::address limit_key(const ip::address& addr) {
  auto a = unmapped(addr);
  if (a.is_v4())
    return a;
  auto bytes = a.to_v6().to_bytes();
  std::fill(bytes.begin() + 8, bytes.end(), 0);
  return ip::address_v6{bytes};
}

bool ip_network::contains(const ip::address& addr) const {
  auto a = unmapped(addr);
  if (a.is_v4() != base.is_v4())
    return false;
  if (a.is_v4())
    return same_prefix(a.to_v4().to_bytes(), base.to_v4().to_bytes(), prefix_length);
  return same_prefix(a.to_v6().to_bytes(), base.to_v6().to_bytes(), prefix_length);
}

std::optional<ip_network> parse_network(std::string_view text) {
  text = trim(text);
  auto slash = text.find('/');
  auto base = parse_address(text.substr(0, slash));
  if (!base)
    return std::nullopt;
  unsigned max_length = base->is_v4() ? 32 : 128;
  unsigned length = max_length;
  if (slash != std::string_view::npos) {
    auto digits = text.substr(slash + 1);
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), length);
    if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size() ||
        length > max_length)
      return std::nullopt;
  }
  return ip_network{*base, length};
}

trusted_proxies::trusted_proxies(const std::vector<std::string>& entries,
                                 std::vector<std::string>& invalid) {
  for (const auto& entry : entries) {
    if (auto network = parse_network(entry))
      networks_.push_back(*network);
    else
      invalid.push_back(entry);
  }
}

bool trusted_proxies::trusts(const ip::address& addr) const {
  return std::any_of(networks_.begin(), networks_.end(),
                     [&](const ip_network& n) { return n.contains(addr); });
}

ip::address client_address(const ip::address& peer,
                           const std::vector<std::string_view>& forwarded_for,
                           const trusted_proxies& proxies) {
  auto hop = unmapped(peer);
  // All entries of all headers, left to right, then walked from the right.
  std::vector<std::string_view> entries;
  for (auto header : forwarded_for) {
    while (true) {
      auto comma = header.find(',');
      entries.push_back(header.substr(0, comma));
      if (comma == std::string_view::npos)
        break;
      header.remove_prefix(comma + 1);
    }
  }
  for (auto it = entries.rbegin(); it != entries.rend() && proxies.trusts(hop); ++it) {
    auto next = parse_forwarded_entry(*it);
    if (!next)
      break;
    hop = *next;
  }
  return hop;
}

} // namespace parley::net
