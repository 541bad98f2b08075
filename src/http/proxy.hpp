// Who the client is when pixserve runs behind a load balancer or reverse
// proxy: every connection then comes from the proxy, and the real client's
// address arrives either in a PROXY protocol header ahead of the HTTP bytes
// (HAProxy's protocol, versions 1 and 2) or in X-Forwarded-For. Both are
// believed only from the configured trusted proxies (server.trusted_proxies):
// anyone else could write any address there.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/ip/address.hpp>

namespace pixserve::http {

// A set of addresses and CIDR networks ("127.0.0.1", "10.0.0.0/8",
// "::1", "fd00::/8"). IPv4-mapped IPv6 addresses (::ffff:a.b.c.d, what a
// dual-stack socket reports for IPv4 clients) match the IPv4 entries.
class AddressSet {
 public:
  AddressSet() = default;
  // Throws std::invalid_argument naming the bad entry.
  explicit AddressSet(const std::vector<std::string>& entries);

  bool contains(const boost::asio::ip::address& address) const noexcept;
  bool empty() const noexcept { return v4_.empty() && v6_.empty(); }

 private:
  struct V4 {
    std::uint32_t network, mask;
  };
  struct V6 {
    boost::asio::ip::address_v6::bytes_type network;
    unsigned prefix;
  };
  std::vector<V4> v4_;
  std::vector<V6> v6_;
};

// An address with an IPv4-mapped IPv6 address turned into the IPv4 one, so
// that limits and logs see one spelling per client.
boost::asio::ip::address canonical(const boost::asio::ip::address& address);

// A PROXY protocol header at the start of a connection's bytes.
struct ProxyHeader {
  enum class Status {
    incomplete,  // a prefix of a valid header: read more
    invalid,     // not a PROXY header, or a malformed one: close the connection
    complete,
  };
  Status status = Status::incomplete;
  std::size_t length = 0;  // bytes of the header (complete only)
  // The client's address; empty for "PROXY UNKNOWN", a v2 LOCAL command
  // (the proxy's own health checks) or an address family other than TCP
  // over IPv4/IPv6: the connection's peer is then the client.
  std::optional<boost::asio::ip::address> source;
};

// Longest header accepted: a v1 line is at most 107 bytes; v2 carries a
// length, and TLVs beyond this are refused rather than buffered.
inline constexpr std::size_t kMaxProxyHeaderBytes = 16 + 2048;

// Parses a v1 ("PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\n") or v2
// (binary) header from the first bytes received on a connection.
ProxyHeader parse_proxy_header(std::string_view data);

// The client of a request that arrived from `peer` with the given
// X-Forwarded-For values (each a comma-separated list, in header order):
// walking the list from the right (the hop nearest to us), each address
// added by a trusted proxy is taken until one that is not a trusted proxy
// is reached - that one is the client. Addresses a client sent itself,
// further left, are never believed. A malformed entry ends the walk. When
// `peer` is not trusted the header is ignored and the result is `peer`.
boost::asio::ip::address client_from_forwarded_for(const boost::asio::ip::address& peer,
                                                   const std::vector<std::string_view>& values,
                                                   const AddressSet& trusted);

}  // namespace pixserve::http
