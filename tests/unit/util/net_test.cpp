#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include "util/clock.hpp"
#include "util/net.hpp"

using namespace rstwatch;

TEST(Addr, Ipv4Ipv6AndMapped) {
    std::uint8_t a[16] = {};
    inet_pton(AF_INET, "10.1.2.3", a);
    EXPECT_EQ(format_addr(a, AF_INET), "10.1.2.3");

    std::uint8_t b[16];
    inet_pton(AF_INET6, "2001:db8::1", b);
    EXPECT_EQ(format_addr(b, AF_INET6), "2001:db8::1");

    std::uint8_t m[16];
    inet_pton(AF_INET6, "::ffff:192.0.2.7", m);
    EXPECT_EQ(format_addr(m, AF_INET6), "192.0.2.7");
    EXPECT_TRUE(is_ipv4(m, m, AF_INET6));
    EXPECT_FALSE(is_ipv4(m, b, AF_INET6));
    EXPECT_TRUE(is_ipv4(a, a, AF_INET));
}

TEST(Addr, ParseRoundTrip) {
    std::uint8_t out[16];
    std::uint16_t fam = 0;
    ASSERT_TRUE(parse_addr("127.0.0.1", out, fam));
    EXPECT_EQ(fam, AF_INET);
    EXPECT_EQ(format_addr(out, fam), "127.0.0.1");
    ASSERT_TRUE(parse_addr("::1", out, fam));
    EXPECT_EQ(fam, AF_INET6);
    EXPECT_FALSE(parse_addr("300.1.1.1", out, fam));
    EXPECT_FALSE(parse_addr(std::string(100, '1'), out, fam));
}

TEST(TcpState, Names) {
    EXPECT_EQ(tcp_state_name(1), "ESTABLISHED");
    EXPECT_EQ(tcp_state_name(2), "SYN_SENT");
    EXPECT_EQ(tcp_state_name(7), "CLOSE");
    EXPECT_EQ(tcp_state_name(10), "LISTEN");
    EXPECT_EQ(tcp_state_name(12), "NEW_SYN_RECV");
    EXPECT_EQ(tcp_state_name(200), "UNKNOWN");
}

TEST(Rfc3339, NanosecondsUtc) {
    Rfc3339 f;
    std::string s;
    f.append(s, 1795550761123456789LL);
    EXPECT_EQ(s, "2026-11-24T20:06:01.123456789Z");
    s.clear();
    f.append(s, 1795550761000000001LL); // same second, cached prefix
    EXPECT_EQ(s, "2026-11-24T20:06:01.000000001Z");
    s.clear();
    f.append(s, 0);
    EXPECT_EQ(s, "1970-01-01T00:00:00.000000000Z");
}
