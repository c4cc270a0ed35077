#include "rstwatch/json_writer.hpp"

#include <charconv>
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
    before_value();
    out_.push_back('"');
    escape_into(out_, k);
    out_.append("\":", 2);
    after_key_ = true;
    return *this;
}

void JsonWriter::escape_into(std::string &out, std::string_view s) {
    static const char hex[] = "0123456789abcdef";
    std::size_t start = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c != '"' && c != '\\') continue;
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
