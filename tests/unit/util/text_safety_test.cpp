// Untrusted names reach JSON lines and terminals: both stay valid and inert.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "util/json_writer.hpp"
#include "util/text_safety.hpp"

using namespace rstwatch;

TEST(TextSafety, Utf8SequencesAreValidatedStrictly) {
    EXPECT_EQ(utf8_sequence_at("\xc3\xa9", 0), 2u);         // é
    EXPECT_EQ(utf8_sequence_at("\xe2\x82\xac", 0), 3u);     // €
    EXPECT_EQ(utf8_sequence_at("\xf0\x9f\x98\x80", 0), 4u); // 😀
    EXPECT_EQ(utf8_sequence_at("\xc0\xaf", 0), 0u);         // overlong '/'
    EXPECT_EQ(utf8_sequence_at("\xed\xa0\x80", 0), 0u);     // surrogate
    EXPECT_EQ(utf8_sequence_at("\xf4\x90\x80\x80", 0), 0u); // above U+10FFFF
    EXPECT_EQ(utf8_sequence_at("\xe2\x82", 0), 0u);         // truncated
    EXPECT_EQ(utf8_sequence_at("\x80", 0), 0u);             // lone continuation
}

TEST(TextSafety, TerminalSafeEscapesControlsAndInvalidBytes) {
    EXPECT_EQ(terminal_safe("nginx"), "nginx");
    EXPECT_EQ(terminal_safe("caf\xc3\xa9"), "caf\xc3\xa9");
    EXPECT_EQ(terminal_safe("\x1b]0;pwned\x07"), "\\x1b]0;pwned\\x07");
    EXPECT_EQ(terminal_safe("a\nb"), "a\\x0ab");
    EXPECT_EQ(terminal_safe("a\nb", true), "a\nb");
    EXPECT_EQ(terminal_safe("x\x7fy"), "x\\x7fy");
    EXPECT_EQ(terminal_safe("\xc2\x9b"
                            "2J"),
              "\\xc2\\x9b2J"); // C1 CSI as UTF-8
    EXPECT_EQ(terminal_safe("\x9b"
                            "2J"),
              "\\x9b2J"); // C1 CSI as a raw byte
    EXPECT_EQ(terminal_safe("clien\xe2"), "clien\\xe2");
}

TEST(TextSafety, JsonStringsAreAlwaysValidUtf8) {
    // A comm the fuzzer found: a truncated UTF-8 sequence made the line invalid.
    for (std::string_view name : {"clien\xe2", "\xff\xfe", "ok\xc3\xa9", "\x1b[2J", "a\x7f"}) {
        std::string out;
        JsonWriter w(out);
        w.begin_object().field("comm", name).end_object();
        auto j = nlohmann::json::parse(out, nullptr, false);
        ASSERT_FALSE(j.is_discarded()) << out;
        EXPECT_TRUE(j["comm"].is_string());
    }
    std::string out;
    JsonWriter(out).str("clien\xe2");
    EXPECT_EQ(out, "\"clien\\ufffd\"");
}
