// A minimal streaming JSON writer appending to a std::string: no DOM per event,
// so encoding stays far above the ring buffer's rate (bench/encoder_bench).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace rstwatch {

class JsonWriter {
  public:
    explicit JsonWriter(std::string &out) : out_(out) {}

    JsonWriter &begin_object();
    JsonWriter &end_object();
    JsonWriter &begin_array();
    JsonWriter &end_array();
    JsonWriter &key(std::string_view k);

    JsonWriter &str(std::string_view v);
    JsonWriter &num(std::int64_t v);
    JsonWriter &unum(std::uint64_t v);
    JsonWriter &dbl(double v);
    JsonWriter &boolean(bool v);
    JsonWriter &null();
    // A value already encoded as JSON (a pre-rendered fragment).
    JsonWriter &raw(std::string_view json);

    // Shorthands for "key": value.
    JsonWriter &field(std::string_view k, std::string_view v) { return key(k).str(v); }
    JsonWriter &field(std::string_view k, const char *v) { return key(k).str(v); }
    JsonWriter &field_num(std::string_view k, std::int64_t v) { return key(k).num(v); }
    JsonWriter &field_unum(std::string_view k, std::uint64_t v) { return key(k).unum(v); }
    JsonWriter &field_bool(std::string_view k, bool v) { return key(k).boolean(v); }
    JsonWriter &field_null(std::string_view k) { return key(k).null(); }

    static void escape_into(std::string &out, std::string_view s);

  private:
    void before_value();

    std::string &out_;
    // One bit per nesting level: does the container already hold an element?
    std::uint64_t has_elems_ = 0;
    int depth_ = 0;
    bool after_key_ = false;
};

} // namespace rstwatch
