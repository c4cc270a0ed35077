// rstwatch report: the text values of an event line (RFC 3339 timestamps,
// addresses) and the names of the line problems.
#include <arpa/inet.h>
#include <cstring>

#include "report/parse.hpp"

namespace rstwatch {

std::string_view to_string(LineProblem p) {
    static constexpr std::string_view names[kLineProblemCount] = {
        "not_json",      "not_object",    "missing_field", "wrong_type",     "bad_value",
        "unknown_event", "newer_version", "too_long",      "truncated_gzip", "corrupt_gzip"};
    return names[std::size_t(p)];
}

namespace {

// Howard Hinnant's days_from_civil.
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = unsigned(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + std::int64_t(doe) - 719468;
}

bool digits(std::string_view s, std::size_t pos, std::size_t n, unsigned &out) {
    if (pos + n > s.size()) return false;
    out = 0;
    for (std::size_t i = pos; i < pos + n; ++i) {
        unsigned c = unsigned(s[i]) - '0';
        if (c > 9) return false;
        out = out * 10 + c;
    }
    return true;
}

} // namespace

std::optional<std::int64_t> parse_rfc3339_ns(std::string_view s) {
    unsigned y, mo, d, h, mi, sec;
    if (s.size() < 20 || !digits(s, 0, 4, y) || s[4] != '-' || !digits(s, 5, 2, mo) ||
        s[7] != '-' || !digits(s, 8, 2, d) || (s[10] != 'T' && s[10] != 't') ||
        !digits(s, 11, 2, h) || s[13] != ':' || !digits(s, 14, 2, mi) || s[16] != ':' ||
        !digits(s, 17, 2, sec))
        return std::nullopt;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return std::nullopt;
    std::size_t pos = 19;
    std::int64_t frac = 0;
    if (s[pos] == '.') {
        ++pos;
        std::size_t n = 0;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
            if (n < 9) frac = frac * 10 + (s[pos] - '0');
            ++n;
            ++pos;
        }
        if (n == 0) return std::nullopt;
        for (; n < 9; ++n)
            frac *= 10;
    }
    std::int64_t offset_s = 0;
    if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
        ++pos;
    } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
        unsigned oh, om;
        if (!digits(s, pos + 1, 2, oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
            !digits(s, pos + 4, 2, om) || oh > 23 || om > 59)
            return std::nullopt;
        offset_s = (std::int64_t(oh) * 3600 + om * 60) * (s[pos] == '+' ? 1 : -1);
        pos += 6;
    } else {
        return std::nullopt;
    }
    if (pos != s.size()) return std::nullopt;
    std::int64_t days = days_from_civil(y, mo, d);
    std::int64_t secs = days * 86400 + std::int64_t(h) * 3600 + mi * 60 + sec - offset_s;
    // Nanoseconds since the epoch in an int64 span 1677..2262: later (or
    // earlier) stamps cannot be represented, so they are not timestamps here.
    constexpr std::int64_t kMaxSecs = INT64_MAX / 1'000'000'000 - 1;
    if (secs > kMaxSecs || secs < -kMaxSecs) return std::nullopt;
    return secs * 1'000'000'000 + frac;
}

bool parse_report_addr(std::string_view s, std::array<std::uint8_t, 16> &out) {
    out = {};
    // Fast path: dotted quad.
    unsigned part = 0, parts = 0, ndig = 0;
    bool v4 = !s.empty() && s.size() <= 15;
    std::uint8_t q[4];
    for (std::size_t i = 0; v4 && i < s.size(); ++i) {
        char c = s[i];
        if (c >= '0' && c <= '9') {
            part = part * 10 + unsigned(c - '0');
            if (++ndig > 3 || part > 255) v4 = false;
        } else if (c == '.' && ndig > 0 && parts < 3) {
            q[parts++] = std::uint8_t(part);
            part = 0;
            ndig = 0;
        } else {
            v4 = false;
        }
    }
    if (v4 && parts == 3 && ndig > 0) {
        q[3] = std::uint8_t(part);
        out[10] = out[11] = 0xff;
        std::memcpy(out.data() + 12, q, 4);
        return true;
    }
    if (s.size() >= INET6_ADDRSTRLEN || s.find(':') == std::string_view::npos) return false;
    char buf[INET6_ADDRSTRLEN];
    std::memcpy(buf, s.data(), s.size());
    buf[s.size()] = '\0';
    return inet_pton(AF_INET6, buf, out.data()) == 1;
}

} // namespace rstwatch
