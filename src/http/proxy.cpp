#include "http/proxy.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <stdexcept>

#include <boost/asio/ip/address_v6.hpp>

#include "http/headers.hpp"

namespace pixserve::http {

namespace ip = boost::asio::ip;

namespace {

std::optional<ip::address> parse_address(std::string_view text) {
  boost::system::error_code ec;
  auto address = ip::make_address(std::string(text), ec);
  if (ec) return std::nullopt;
  return address;
}

constexpr std::string_view kV1Prefix = "PROXY ";
constexpr std::string_view kV2Signature{"\r\n\r\n\0\r\nQUIT\n", 12};
constexpr std::size_t kV1MaxBytes = 107;  // the protocol's own bound, CRLF included

bool is_prefix(std::string_view data, std::string_view of) {
  return data.size() < of.size() && of.substr(0, data.size()) == data;
}

bool valid_port(std::string_view s) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  return !s.empty() && s.size() <= 5 && ec == std::errc{} && end == s.data() + s.size() && value <= 65535;
}

ProxyHeader invalid() { return {ProxyHeader::Status::invalid, 0, std::nullopt}; }

ProxyHeader parse_v1(std::string_view data) {
  const std::size_t lf = data.substr(0, kV1MaxBytes).find('\n');
  if (lf == std::string_view::npos) return data.size() < kV1MaxBytes ? ProxyHeader{} : invalid();
  if (data[lf - 1] != '\r') return invalid();  // lf > 0: data starts with "PROXY "
  const std::size_t crlf = lf - 1;
  std::string_view line = data.substr(kV1Prefix.size(), crlf - kV1Prefix.size());
  std::array<std::string_view, 5> parts{};
  std::size_t n = 0;
  while (!line.empty()) {
    const std::size_t space = line.find(' ');
    if (n == parts.size()) return invalid();
    parts[n++] = line.substr(0, space);
    if (space == std::string_view::npos) break;
    line.remove_prefix(space + 1);
  }
  ProxyHeader out{ProxyHeader::Status::complete, crlf + 2, std::nullopt};
  // UNKNOWN: the proxy could not tell (the rest of the line is ignored).
  if (n >= 1 && parts[0] == "UNKNOWN") return out;
  if (n != 5 || (parts[0] != "TCP4" && parts[0] != "TCP6")) return invalid();
  auto source = parse_address(parts[1]);
  auto destination = parse_address(parts[2]);
  const bool v4 = parts[0] == "TCP4";
  if (!source || !destination || source->is_v4() != v4 || destination->is_v4() != v4) return invalid();
  if (!valid_port(parts[3]) || !valid_port(parts[4])) return invalid();
  out.source = canonical(*source);
  return out;
}

ProxyHeader parse_v2(std::string_view data) {
  if (data.size() < 16) return {};
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(data[i]); };
  const unsigned version = byte(12) >> 4, command = byte(12) & 0x0f;
  if (version != 2 || command > 1) return invalid();
  const std::size_t length = 16 + ((std::size_t{byte(14)} << 8) | byte(15));
  if (length > kMaxProxyHeaderBytes) return invalid();
  if (data.size() < length) return {};
  ProxyHeader out{ProxyHeader::Status::complete, length, std::nullopt};
  if (command == 0) return out;  // LOCAL: the proxy speaking for itself
  const unsigned family = byte(13);
  if (family == 0x11) {  // TCP over IPv4
    if (length < 16 + 12) return invalid();
    ip::address_v4::bytes_type b;
    std::copy_n(data.begin() + 16, b.size(), reinterpret_cast<char*>(b.data()));
    out.source = ip::address(ip::address_v4(b));
  } else if (family == 0x21) {  // TCP over IPv6
    if (length < 16 + 36) return invalid();
    ip::address_v6::bytes_type b;
    std::copy_n(data.begin() + 16, b.size(), reinterpret_cast<char*>(b.data()));
    out.source = canonical(ip::address(ip::address_v6(b)));
  }
  // UNSPEC, UDP and UNIX sockets: the spec says to use the real connection's
  // addresses, so source stays empty.
  return out;
}

}  // namespace

ip::address canonical(const ip::address& address) {
  if (address.is_v6() && address.to_v6().is_v4_mapped()) return ip::make_address_v4(ip::v4_mapped, address.to_v6());
  return address;
}

AddressSet::AddressSet(const std::vector<std::string>& entries) {
  for (const auto& entry : entries) {
    const auto bad = [&] {
      return std::invalid_argument("expected an IP address or a CIDR network like 10.0.0.0/8, got '" + entry + "'");
    };
    const std::size_t slash = entry.find('/');
    auto address = parse_address(std::string_view(entry).substr(0, slash));
    if (!address) throw bad();
    *address = canonical(*address);
    const unsigned max_prefix = address->is_v4() ? 32 : 128;
    unsigned prefix = max_prefix;
    if (slash != std::string::npos) {
      std::string_view digits = std::string_view(entry).substr(slash + 1);
      auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
      if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size() || prefix > max_prefix)
        throw bad();
    }
    if (address->is_v4()) {
      const std::uint32_t mask = prefix == 0 ? 0 : ~std::uint32_t{0} << (32 - prefix);
      // The host bits are dropped, so "10.1.2.3/8" means 10.0.0.0/8.
      v4_.push_back({address->to_v4().to_uint() & mask, mask});
    } else {
      v6_.push_back({address->to_v6().to_bytes(), prefix});
    }
  }
}

bool AddressSet::contains(const ip::address& given) const noexcept {
  const ip::address address = canonical(given);
  if (address.is_v4()) {
    const std::uint32_t a = address.to_v4().to_uint();
    return std::any_of(v4_.begin(), v4_.end(), [a](const V4& n) { return (a & n.mask) == n.network; });
  }
  const auto a = address.to_v6().to_bytes();
  return std::any_of(v6_.begin(), v6_.end(), [&a](const V6& n) {
    for (unsigned bit = 0; bit < n.prefix; bit += 8) {
      const unsigned take = std::min(8u, n.prefix - bit);
      const auto mask = static_cast<unsigned char>(0xff << (8 - take));
      if ((a[bit / 8] & mask) != (n.network[bit / 8] & mask)) return false;
    }
    return true;
  });
}

ProxyHeader parse_proxy_header(std::string_view data) {
  if (is_prefix(data, kV1Prefix) || is_prefix(data, kV2Signature)) return {};
  if (data.substr(0, kV1Prefix.size()) == kV1Prefix) return parse_v1(data);
  if (data.substr(0, kV2Signature.size()) == kV2Signature) return parse_v2(data);
  return invalid();
}

ip::address client_from_forwarded_for(const ip::address& peer, const std::vector<std::string_view>& values,
                                      const AddressSet& trusted) {
  ip::address client = canonical(peer);
  if (!trusted.contains(client)) return client;
  // Entries in order, nearest hop last.
  std::vector<std::string_view> hops;
  for (std::string_view value : values) {
    for (;;) {
      const std::size_t comma = value.find(',');
      hops.push_back(trim_ows(value.substr(0, comma)));
      if (comma == std::string_view::npos) break;
      value.remove_prefix(comma + 1);
    }
  }
  for (auto hop = hops.rbegin(); hop != hops.rend(); ++hop) {
    auto address = parse_address(*hop);
    if (!address) break;  // garbage (or "unknown"): the last good hop stands
    client = canonical(*address);
    if (!trusted.contains(client)) break;
  }
  return client;
}

}  // namespace pixserve::http
