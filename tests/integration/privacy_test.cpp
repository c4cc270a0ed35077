// Privileged: no payload byte is ever captured. A connection carries a marker
// both ways, enables keepalive and is reset; with every event kind on, the
// marker appears nowhere in the output, in plain text, hex or base64.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.hpp"

using namespace rwtest;

namespace {

std::string hex(const std::string &s, bool upper) {
    static const char *lo = "0123456789abcdef", *up = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        out += (upper ? up : lo)[c >> 4];
        out += (upper ? up : lo)[c & 15];
    }
    return out;
}

std::string base64(const std::string &s) {
    static const char *t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    for (std::size_t i = 0; i + 2 < s.size(); i += 3) {
        unsigned v =
            (unsigned char)s[i] << 16 | (unsigned char)s[i + 1] << 8 | (unsigned char)s[i + 2];
        for (int k = 18; k >= 0; k -= 6)
            out += t[(v >> k) & 63];
    }
    return out;
}

} // namespace

TEST(Privacy, PayloadNeverAppearsInTheOutput) {
    RW_REQUIRE_BPF();
    const std::string marker = "RWSECRET" + std::to_string(getpid()) + "payload42";
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    ASSERT_EQ(bind(lfd, reinterpret_cast<sockaddr *>(&a), sizeof(a)), 0);
    ASSERT_EQ(listen(lfd, 1), 0);
    getsockname(lfd, reinterpret_cast<sockaddr *>(&a), &len);
    const int port = ntohs(a.sin_port);

    Session s({"--events", "all", "--port", std::to_string(port)});
    int c = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_EQ(connect(c, reinterpret_cast<sockaddr *>(&a), sizeof(a)), 0);
    int srv = accept(lfd, nullptr, nullptr);
    ASSERT_GE(srv, 0);
    int one = 1;
    setsockopt(c, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    char buf[256];
    ASSERT_EQ(write(c, marker.data(), marker.size()), ssize_t(marker.size()));
    ASSERT_EQ(read(srv, buf, sizeof(buf)), ssize_t(marker.size()));
    ASSERT_EQ(write(srv, marker.data(), marker.size()), ssize_t(marker.size()));
    ASSERT_EQ(read(c, buf, sizeof(buf)), ssize_t(marker.size()));
    // Unread data on close: the kernel resets the connection.
    ASSERT_EQ(write(c, marker.data(), marker.size()), ssize_t(marker.size()));
    usleep(100000);
    close(srv);
    close(c);
    close(lfd);
    sleep(1);
    auto events = s.stop();

    std::size_t resets = 0;
    for (auto &e : of_type(events, "tcp_reset"))
        if (e["local"]["port"] == port || e["remote"]["port"] == port) ++resets;
    ASSERT_GT(resets, 0u) << "the connection was not traced: " << json(events).dump(2);
    EXPECT_FALSE(of_type(events, "keepalive_set").empty());
    for (const auto &needle : {marker, hex(marker, false), hex(marker, true), base64(marker)})
        for (const auto &e : events)
            EXPECT_EQ(e.dump().find(needle), std::string::npos) << needle << " in " << e.dump();
}
