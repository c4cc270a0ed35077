#include "util/text_safety.hpp"

namespace rstwatch {

std::size_t utf8_sequence_at(std::string_view s, std::size_t i) {
    auto at = [&](std::size_t k) -> unsigned {
        return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0x100u;
    };
    auto cont = [&](std::size_t k, unsigned lo = 0x80, unsigned hi = 0xbf) {
        unsigned c = at(k);
        return c >= lo && c <= hi;
    };
    const unsigned c = at(0);
    if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
    if (c == 0xe0) return cont(1, 0xa0) && cont(2) ? 3 : 0;
    if ((c >= 0xe1 && c <= 0xec) || c == 0xee || c == 0xef) return cont(1) && cont(2) ? 3 : 0;
    if (c == 0xed) return cont(1, 0x80, 0x9f) && cont(2) ? 3 : 0; // no surrogates
    if (c == 0xf0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
    if (c >= 0xf1 && c <= 0xf3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
    if (c == 0xf4) return cont(1, 0x80, 0x8f) && cont(2) && cont(3) ? 4 : 0;
    return 0;
}

void append_terminal_safe(std::string &out, std::string_view s, bool keep_newlines) {
    static const char hex[] = "0123456789abcdef";
    auto escape = [&](unsigned char c) {
        const char e[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
        out.append(e, 4);
    };
    for (std::size_t i = 0; i < s.size();) {
        const unsigned char c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            if ((c < 0x20 && !(keep_newlines && c == '\n')) || c == 0x7f)
                escape(c);
            else
                out.push_back(char(c));
            ++i;
            continue;
        }
        std::size_t n = utf8_sequence_at(s, i);
        // U+0080..U+009F (C1 controls, 0xC2 0x80..0x9F): CSI and friends.
        if (n == 0 || (n == 2 && c == 0xc2 && static_cast<unsigned char>(s[i + 1]) < 0xa0)) {
            escape(c);
            ++i;
            continue;
        }
        out.append(s.data() + i, n);
        i += n;
    }
}

std::string terminal_safe(std::string_view s, bool keep_newlines) {
    std::string out;
    append_terminal_safe(out, s, keep_newlines);
    return out;
}

} // namespace rstwatch
