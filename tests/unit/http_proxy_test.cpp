// Client addresses behind proxies: trusted-proxy sets (CIDR), PROXY protocol
// v1/v2 headers, X-Forwarded-For, and the configuration keys of the
// connection limits. The server's use of them is in http_server_test.cpp.
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "http/proxy.hpp"

using namespace pixserve::http;
namespace ip = boost::asio::ip;

namespace {

ip::address addr(const char* text) { return ip::make_address(text); }

std::string v2_header(unsigned char command, unsigned char family, const std::vector<unsigned char>& payload) {
  std::string out("\r\n\r\n\0\r\nQUIT\n", 12);
  out += static_cast<char>(0x20 | command);
  out += static_cast<char>(family);
  out += static_cast<char>(payload.size() >> 8);
  out += static_cast<char>(payload.size() & 0xff);
  for (unsigned char b : payload) out += static_cast<char>(b);
  return out;
}

}  // namespace

TEST(HttpProxy, AddressSetMatchesAddressesAndNetworks) {
  AddressSet set({"127.0.0.1", "10.0.0.0/8", "192.168.1.77/24", "fd00::/8", "2001:db8::1"});
  EXPECT_TRUE(set.contains(addr("127.0.0.1")));
  EXPECT_FALSE(set.contains(addr("127.0.0.2")));
  EXPECT_TRUE(set.contains(addr("10.255.3.4")));
  EXPECT_FALSE(set.contains(addr("11.0.0.1")));
  EXPECT_TRUE(set.contains(addr("192.168.1.200")));  // host bits of the entry are ignored
  EXPECT_FALSE(set.contains(addr("192.168.2.1")));
  EXPECT_TRUE(set.contains(addr("fd12:3456::1")));
  EXPECT_FALSE(set.contains(addr("fe80::1")));
  EXPECT_TRUE(set.contains(addr("2001:db8::1")));
  EXPECT_FALSE(set.contains(addr("2001:db8::2")));
  EXPECT_TRUE(set.contains(addr("::ffff:10.1.2.3")));  // IPv4 seen through a dual-stack socket
  EXPECT_FALSE(AddressSet().contains(addr("127.0.0.1")));
  EXPECT_TRUE(AddressSet(std::vector<std::string>{"0.0.0.0/0"}).contains(addr("203.0.113.5")));
  EXPECT_TRUE(AddressSet(std::vector<std::string>{"2001:db8::/33"}).contains(addr("2001:db8:7fff::1")));
  EXPECT_FALSE(AddressSet(std::vector<std::string>{"2001:db8::/33"}).contains(addr("2001:db8:8000::1")));
  for (const char* bad : {"", "localhost", "10.0.0.0/33", "10.0.0.0/", "10.0.0.0/x", "::1/129", "1.2.3.4/8/8"})
    EXPECT_THROW(AddressSet(std::vector<std::string>{bad}), std::invalid_argument) << bad;
  EXPECT_EQ(canonical(addr("::ffff:192.0.2.1")), addr("192.0.2.1"));
}

TEST(HttpProxy, ProxyProtocolVersion1) {
  const std::string tcp4 = "PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\n";
  auto h = parse_proxy_header(tcp4 + "GET / HTTP/1.1\r\n");
  ASSERT_EQ(h.status, ProxyHeader::Status::complete);
  EXPECT_EQ(h.length, tcp4.size());
  EXPECT_EQ(h.source, addr("192.0.2.1"));

  h = parse_proxy_header("PROXY TCP6 2001:db8::7 2001:db8::1 1 65535\r\n");
  ASSERT_EQ(h.status, ProxyHeader::Status::complete);
  EXPECT_EQ(h.source, addr("2001:db8::7"));

  h = parse_proxy_header("PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\nGET");
  ASSERT_EQ(h.status, ProxyHeader::Status::complete);
  EXPECT_FALSE(h.source);
  EXPECT_EQ(parse_proxy_header("PROXY UNKNOWN\r\n").status, ProxyHeader::Status::complete);

  // Every prefix of a valid header asks for more bytes.
  for (std::size_t n = 0; n < tcp4.size(); ++n)
    EXPECT_EQ(parse_proxy_header(std::string_view(tcp4).substr(0, n)).status, ProxyHeader::Status::incomplete) << n;

  for (std::string bad : {"GET / HTTP/1.1\r\n\r\n", "PROXY TCP4 192.0.2.1 198.51.100.1 56324\r\n",
                          "PROXY TCP4 192.0.2.1 198.51.100.1 56324 443 7\r\n",
                          "PROXY TCP4 999.0.2.1 198.51.100.1 56324 443\r\n",
                          "PROXY TCP4 2001:db8::7 198.51.100.1 56324 443\r\n",
                          "PROXY TCP6 192.0.2.1 198.51.100.1 56324 443\r\n",
                          "PROXY TCP4 192.0.2.1 198.51.100.1 65536 443\r\n",
                          "PROXY TCP4 192.0.2.1 198.51.100.1 -1 443\r\n",
                          "PROXY TCP4  192.0.2.1 198.51.100.1 1 443\r\n",
                          "PROXY UDP4 192.0.2.1 198.51.100.1 56324 443\r\n", "proxy TCP4 192.0.2.1 1.2.3.4 1 2\r\n",
                          "PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\n"})
    EXPECT_EQ(parse_proxy_header(bad).status, ProxyHeader::Status::invalid) << bad;
  // No CRLF within the protocol's 107 bytes.
  EXPECT_EQ(parse_proxy_header("PROXY UNKNOWN " + std::string(100, 'x')).status, ProxyHeader::Status::invalid);
  EXPECT_EQ(parse_proxy_header("PROXY UNKNOWN " + std::string(80, 'x')).status, ProxyHeader::Status::incomplete);
}

TEST(HttpProxy, ProxyProtocolVersion2) {
  // TCP over IPv4: 192.0.2.1:56324 -> 198.51.100.1:443, then one TLV.
  std::vector<unsigned char> v4 = {192, 0, 2, 1, 198, 51, 100, 1, 0xdc, 0x04, 0x01, 0xbb, 0x01, 0x00, 0x01, 'x'};
  std::string header = v2_header(1, 0x11, v4);
  auto h = parse_proxy_header(header + "GET / HTTP/1.1\r\n");
  ASSERT_EQ(h.status, ProxyHeader::Status::complete);
  EXPECT_EQ(h.length, header.size());
  EXPECT_EQ(h.source, addr("192.0.2.1"));
  for (std::size_t n = 0; n < header.size(); ++n)
    EXPECT_EQ(parse_proxy_header(std::string_view(header).substr(0, n)).status, ProxyHeader::Status::incomplete) << n;

  std::vector<unsigned char> v6(36, 0);
  v6[0] = 0x20, v6[1] = 0x01, v6[2] = 0x0d, v6[3] = 0xb8, v6[15] = 7;
  h = parse_proxy_header(v2_header(1, 0x21, v6));
  ASSERT_EQ(h.status, ProxyHeader::Status::complete);
  EXPECT_EQ(h.source, addr("2001:db8::7"));

  h = parse_proxy_header(v2_header(0, 0x00, {}));  // LOCAL: a health check of the proxy itself
  ASSERT_EQ(h.status, ProxyHeader::Status::complete);
  EXPECT_FALSE(h.source);
  h = parse_proxy_header(v2_header(1, 0x31, std::vector<unsigned char>(216, 0)));  // UNIX socket
  ASSERT_EQ(h.status, ProxyHeader::Status::complete);
  EXPECT_FALSE(h.source);

  EXPECT_EQ(parse_proxy_header(v2_header(2, 0x11, v4)).status, ProxyHeader::Status::invalid);  // unknown command
  EXPECT_EQ(parse_proxy_header(v2_header(1, 0x11, {1, 2, 3})).status, ProxyHeader::Status::invalid);  // too short
  EXPECT_EQ(parse_proxy_header(v2_header(1, 0x21, v4)).status, ProxyHeader::Status::invalid);
  std::string version1 = v2_header(1, 0x11, v4);
  version1[12] = 0x11;
  EXPECT_EQ(parse_proxy_header(version1).status, ProxyHeader::Status::invalid);
  // An oversized header is refused from its length field, before it is read.
  std::string huge = v2_header(1, 0x11, v4);
  huge[14] = static_cast<char>(0xff);
  EXPECT_EQ(parse_proxy_header(huge.substr(0, 16)).status, ProxyHeader::Status::invalid);
  std::string wrong_signature = header;
  wrong_signature[11] = 'X';
  EXPECT_EQ(parse_proxy_header(wrong_signature).status, ProxyHeader::Status::invalid);
}

TEST(HttpProxy, ForwardedForOnlyFromTrustedProxies) {
  const AddressSet trusted({"127.0.0.1", "10.0.0.0/8"});
  using V = std::vector<std::string_view>;
  // Only the hop the trusted proxy added is believed; what the client wrote
  // itself (further left) is not.
  EXPECT_EQ(client_from_forwarded_for(addr("127.0.0.1"), V{"198.51.100.9, 203.0.113.7"}, trusted),
            addr("203.0.113.7"));
  // Through two trusted proxies.
  EXPECT_EQ(client_from_forwarded_for(addr("127.0.0.1"), V{"198.51.100.9, 203.0.113.7, 10.1.1.1"}, trusted),
            addr("203.0.113.7"));
  // Several header lines form one list.
  EXPECT_EQ(client_from_forwarded_for(addr("127.0.0.1"), V{"198.51.100.9", "10.1.1.1"}, trusted),
            addr("198.51.100.9"));
  // From anyone else the header is ignored.
  EXPECT_EQ(client_from_forwarded_for(addr("192.0.2.50"), V{"203.0.113.7"}, trusted), addr("192.0.2.50"));
  // Garbage ends the walk at the last good hop.
  EXPECT_EQ(client_from_forwarded_for(addr("127.0.0.1"), V{"203.0.113.7, unknown"}, trusted), addr("127.0.0.1"));
  EXPECT_EQ(client_from_forwarded_for(addr("127.0.0.1"), V{"garbage, 10.2.2.2"}, trusted), addr("10.2.2.2"));
  EXPECT_EQ(client_from_forwarded_for(addr("127.0.0.1"), V{"  2001:db8::5 "}, trusted), addr("2001:db8::5"));
  EXPECT_EQ(client_from_forwarded_for(addr("127.0.0.1"), V{}, trusted), addr("127.0.0.1"));
  EXPECT_EQ(client_from_forwarded_for(addr("::ffff:127.0.0.1"), V{"::ffff:203.0.113.7"}, trusted),
            addr("203.0.113.7"));
}
