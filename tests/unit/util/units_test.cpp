#include <gtest/gtest.h>

#include "util/middlebox.hpp"
#include "util/units.hpp"

using namespace rstwatch;
using std::chrono::milliseconds;

TEST(Duration, AcceptsUnits) {
    EXPECT_EQ(parse_duration("500ms"), milliseconds(500));
    EXPECT_EQ(parse_duration("30s"), milliseconds(30000));
    EXPECT_EQ(parse_duration("5m"), milliseconds(300000));
    EXPECT_EQ(parse_duration("1h"), milliseconds(3600000));
    EXPECT_EQ(parse_duration("2d"), milliseconds(172800000));
    EXPECT_EQ(parse_duration("7"), milliseconds(7000));
    EXPECT_EQ(parse_duration("0s"), milliseconds(0));
}

TEST(Duration, RejectsGarbage) {
    for (const char *bad : {"", "10x", "-5s", "s", "1.5s", "5 s", "ms", "99999999999999999999s",
                            "9223372036854775807h", "1h30m"})
        EXPECT_FALSE(parse_duration(bad).has_value()) << bad;
}

TEST(Size, BinaryMultiples) {
    EXPECT_EQ(parse_size("4096"), 4096u);
    EXPECT_EQ(parse_size("64K"), 65536u);
    EXPECT_EQ(parse_size("8M"), 8u << 20);
    EXPECT_EQ(parse_size("1G"), 1u << 30);
    EXPECT_EQ(parse_size("2MiB"), 2u << 20);
    EXPECT_FALSE(parse_size("8X").has_value());
    EXPECT_FALSE(parse_size("").has_value());
    EXPECT_FALSE(parse_size("-1M").has_value());
}

TEST(Duration, FormatsCompactly) {
    EXPECT_EQ(format_duration(milliseconds(1500)), "1500ms");
    EXPECT_EQ(format_duration(milliseconds(7000)), "7s");
    EXPECT_EQ(format_duration(milliseconds(240000)), "4m");
    EXPECT_EQ(format_duration(milliseconds(7200000)), "2h");
    EXPECT_EQ(format_duration(milliseconds(90000)), "90s");
}

TEST(Middlebox, PresetsAndDurations) {
    EXPECT_EQ(parse_middlebox_timeout("aws-nat-gateway"), milliseconds(350000));
    EXPECT_EQ(parse_middlebox_timeout("azure-load-balancer"), milliseconds(240000));
    EXPECT_EQ(parse_middlebox_timeout("gcp-cloud-nat"), milliseconds(1200000));
    EXPECT_EQ(parse_middlebox_timeout("linux-conntrack"), milliseconds(432000000));
    EXPECT_EQ(parse_middlebox_timeout("kube-proxy"), milliseconds(86400000));
    EXPECT_EQ(parse_middlebox_timeout("4m"), milliseconds(240000));
    EXPECT_FALSE(parse_middlebox_timeout("0s").has_value());
    EXPECT_FALSE(parse_middlebox_timeout("aws").has_value());
}

TEST(Middlebox, PresetsConsistentWithABound) {
    auto p = presets_consistent_with(milliseconds(300000));
    ASSERT_EQ(p.size(), 2u);
    EXPECT_EQ(p[0].timeout.count(), 240); // largest under the bound first
    EXPECT_TRUE(presets_consistent_with(milliseconds(1000)).empty());
}
