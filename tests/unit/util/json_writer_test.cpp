#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "util/json_writer.hpp"

using namespace rstwatch;

TEST(JsonWriter, NestedObjectsAndArraysGetCommasRight) {
    std::string out;
    JsonWriter w(out);
    w.begin_object().field_num("a", -1).key("b").begin_array().unum(1).str("x").null().end_array();
    w.key("c").begin_object().field_bool("t", true).end_object().field("d", "e").end_object();
    EXPECT_EQ(out, R"({"a":-1,"b":[1,"x",null],"c":{"t":true},"d":"e"})");
}

TEST(JsonWriter, EscapesControlAndQuotes) {
    std::string out;
    JsonWriter w(out);
    std::string nasty = std::string("q\"b\\n\nt\tc") + char(1) + char(0x1f) + "é";
    w.begin_object().field("s", nasty).end_object();
    auto j = nlohmann::json::parse(out);
    EXPECT_EQ(j["s"], nasty);
    EXPECT_NE(out.find("\\u0001"), std::string::npos);
}

TEST(JsonWriter, EmptyContainersAndRaw) {
    std::string out;
    JsonWriter w(out);
    w.begin_object().key("a").begin_array().end_array().key("o").begin_object().end_object();
    w.key("r").raw("\"2026\"").field_unum("n", 18446744073709551615ull).end_object();
    EXPECT_EQ(out, R"({"a":[],"o":{},"r":"2026","n":18446744073709551615})");
}

TEST(JsonWriter, NonFiniteDoublesBecomeNull) {
    std::string out;
    JsonWriter w(out);
    w.begin_array().dbl(1.5).dbl(1.0 / 0.0).end_array();
    EXPECT_EQ(out, "[1.5,null]");
}
