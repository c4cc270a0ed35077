#include "util/json_writer.hpp"

#include "util/text_safety.hpp"

#include <charconv>
#include <cstring>
#include <cmath>

namespace rstwatch {

void JsonWriter::before_value() {
    if (after_key_) {
        after_key_ = false;
        return;
    }
    if (depth_ > 0) {
        std::uint64_t bit = 1ull << (depth_ - 1);
        if (has_elems_ & bit) out_.push_back(',');
        has_elems_ |= bit;
    }
}

JsonWriter &JsonWriter::begin_object() {
    before_value();
    out_.push_back('{');
    ++depth_;
    has_elems_ &= ~(1ull << (depth_ - 1));
    return *this;
}

JsonWriter &JsonWriter::end_object() {
    --depth_;
    out_.push_back('}');
    return *this;
}

JsonWriter &JsonWriter::begin_array() {
    before_value();
    out_.push_back('[');
    ++depth_;
    has_elems_ &= ~(1ull << (depth_ - 1));
    return *this;
}

JsonWriter &JsonWriter::end_array() {
    --depth_;
    out_.push_back(']');
    return *this;
}

JsonWriter &JsonWriter::key(std::string_view k) {
    // Keys are the program's own literals: never escaped. The hot path of every
    // event: separator, quotes and key go out in one append (one capacity
    // check) instead of four.
    char buf[64];
    if (k.size() + 4 > sizeof(buf)) {
        before_value();
        out_.push_back('"');
        out_.append(k);
        out_.append("\":", 2);
    } else {
        std::size_t n = 0;
        if (depth_ > 0) {
            const std::uint64_t bit = 1ull << (depth_ - 1);
            if (has_elems_ & bit) buf[n++] = ',';
            has_elems_ |= bit;
        }
        buf[n++] = '"';
        std::memcpy(buf + n, k.data(), k.size());
        n += k.size();
        buf[n++] = '"';
        buf[n++] = ':';
        out_.append(buf, n);
    }
    after_key_ = true;
    return *this;
}

namespace {

// Bytes that must be escaped inside a JSON string, and bytes >= 0x80, which
// must start a valid UTF-8 sequence (checked on the slow path).
struct EscapeTable {
    bool need[256] = {};
    constexpr EscapeTable() {
        for (int c = 0; c < 0x20; ++c)
            need[c] = true;
        need[int('"')] = true;
        need[int('\\')] = true;
        need[0x7f] = true;
        for (int c = 0x80; c < 0x100; ++c)
            need[c] = true;
    }
};
constexpr EscapeTable kEscape;

} // namespace

// Does any byte of the 8 need a look (< 0x20, '"', '\\', DEL, or >= 0x80 for
// the UTF-8 check)? SWAR test; a false positive only takes the slow path.
inline bool word_needs_escape(std::uint64_t x) {
    constexpr std::uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    auto has_zero = [](std::uint64_t v) { return (v - ones) & ~v & highs; };
    std::uint64_t below_space = (x - ones * 0x20) & ~x & highs;
    return (x & highs) | below_space | has_zero(x ^ (ones * '"')) | has_zero(x ^ (ones * '\\')) |
           has_zero(x ^ (ones * 0x7f));
}

void JsonWriter::escape_into(std::string &out, std::string_view s) {
    static const char hex[] = "0123456789abcdef";
    // Fast path: most values need no escaping; skip 8 clean bytes at a time.
    std::size_t clean = 0;
    while (clean + 8 <= s.size()) {
        std::uint64_t w;
        std::memcpy(&w, s.data() + clean, 8);
        if (word_needs_escape(w)) break;
        clean += 8;
    }
    std::size_t start = 0;
    for (std::size_t i = clean; i < s.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        if (!kEscape.need[c]) continue;
        if (c >= 0x80) {
            // JSON is UTF-8: keep valid sequences, replace a byte that starts
            // none (a process name can be any bytes) with U+FFFD.
            if (std::size_t n = utf8_sequence_at(s, i)) {
                i += n - 1;
                continue;
            }
            out.append(s.data() + start, i - start);
            start = i + 1;
            out.append("\\ufffd", 6);
            continue;
        }
        out.append(s.data() + start, i - start);
        start = i + 1;
        switch (c) {
        case '"':
            out.append("\\\"", 2);
            break;
        case '\\':
            out.append("\\\\", 2);
            break;
        case '\n':
            out.append("\\n", 2);
            break;
        case '\t':
            out.append("\\t", 2);
            break;
        case '\r':
            out.append("\\r", 2);
            break;
        default: {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            out.append(u, 6);
        }
        }
    }
    out.append(s.data() + start, s.size() - start);
}

JsonWriter &JsonWriter::str(std::string_view v) {
    before_value();
    out_.push_back('"');
    escape_into(out_, v);
    out_.push_back('"');
    return *this;
}

JsonWriter &JsonWriter::num(std::int64_t v) {
    before_value();
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof(buf), v);
    out_.append(buf, r.ptr);
    return *this;
}

JsonWriter &JsonWriter::unum(std::uint64_t v) {
    before_value();
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof(buf), v);
    out_.append(buf, r.ptr);
    return *this;
}

JsonWriter &JsonWriter::dbl(double v) {
    if (!std::isfinite(v)) return null();
    before_value();
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof(buf), v);
    out_.append(buf, r.ptr);
    return *this;
}

JsonWriter &JsonWriter::boolean(bool v) {
    before_value();
    out_.append(v ? "true" : "false");
    return *this;
}

JsonWriter &JsonWriter::null() {
    before_value();
    out_.append("null", 4);
    return *this;
}

JsonWriter &JsonWriter::raw(std::string_view json) {
    before_value();
    out_.append(json);
    return *this;
}

} // namespace rstwatch
