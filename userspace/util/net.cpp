#include "util/net.hpp"

#include <arpa/inet.h>
#include <cstring>
#include <netinet/in.h>
#include <sys/socket.h>

namespace rstwatch {

namespace {

bool v4_mapped(const std::uint8_t a[16]) {
    static const std::uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return std::memcmp(a, prefix, sizeof(prefix)) == 0;
}

} // namespace

// Dotted quad without printf (glibc's inet_ntop formats IPv4 with sprintf,
// which dominated the per-event cost).
std::string_view format_v4(const std::uint8_t a[4], char *buf) {
    char *p = buf;
    for (int i = 0; i < 4; ++i) {
        unsigned v = a[i];
        if (v >= 100) {
            *p++ = char('0' + v / 100);
            v %= 100;
            *p++ = char('0' + v / 10);
        } else if (v >= 10) {
            *p++ = char('0' + v / 10);
        }
        *p++ = char('0' + v % 10);
        if (i < 3) *p++ = '.';
    }
    *p = '\0';
    return std::string_view(buf, std::size_t(p - buf));
}

std::string_view format_addr(const std::uint8_t addr[16], std::uint16_t family, char *buf) {
    if (family == AF_INET) return format_v4(addr, buf);
    if (v4_mapped(addr)) return format_v4(addr + 12, buf);
    const char *r = inet_ntop(AF_INET6, addr, buf, INET6_ADDRSTRLEN);
    if (!r) {
        buf[0] = '\0';
        return {};
    }
    return std::string_view(buf);
}

std::string format_addr(const std::uint8_t addr[16], std::uint16_t family) {
    char buf[INET6_ADDRSTRLEN];
    return std::string(format_addr(addr, family, buf));
}

bool is_ipv4(const std::uint8_t local[16], const std::uint8_t remote[16], std::uint16_t family) {
    if (family == AF_INET) return true;
    return v4_mapped(local) && v4_mapped(remote);
}

std::string_view tcp_state_name(unsigned state) {
    // include/net/tcp_states.h; values are UAPI-stable.
    static constexpr std::string_view names[] = {
        "UNKNOWN",   "ESTABLISHED", "SYN_SENT",     "SYN_RECV",       "FIN_WAIT1",
        "FIN_WAIT2", "TIME_WAIT",   "CLOSE",        "CLOSE_WAIT",     "LAST_ACK",
        "LISTEN",    "CLOSING",     "NEW_SYN_RECV", "BOUND_INACTIVE",
    };
    if (state < sizeof(names) / sizeof(names[0])) return names[state];
    return "UNKNOWN";
}

bool parse_addr(std::string_view text, std::uint8_t out[16], std::uint16_t &family) {
    char buf[INET6_ADDRSTRLEN + 1];
    if (text.size() >= sizeof(buf)) return false;
    std::memcpy(buf, text.data(), text.size());
    buf[text.size()] = '\0';
    std::memset(out, 0, 16);
    if (inet_pton(AF_INET, buf, out) == 1) {
        family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, buf, out) == 1) {
        family = AF_INET6;
        return true;
    }
    return false;
}

} // namespace rstwatch
