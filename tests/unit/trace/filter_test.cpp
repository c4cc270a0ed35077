#include <gtest/gtest.h>

#include "trace/filter.hpp"

using namespace rstwatch;

TEST(VerdictFilter, WithoutAVerdictEverythingPasses) {
    VerdictFilter f;
    EXPECT_TRUE(f.pass(Verdict::not_idle));
    EXPECT_TRUE(f.pass(std::nullopt));
    EXPECT_EQ(f.dropped(), 0u);
}

TEST(VerdictFilter, KeepsOnlyTheWantedVerdictAndCountsTheRest) {
    VerdictFilter f(Verdict::keepalive_disabled);
    EXPECT_TRUE(f.pass(Verdict::keepalive_disabled));
    EXPECT_FALSE(f.pass(Verdict::keepalive_too_slow));
    EXPECT_FALSE(f.pass(Verdict::unknown));
    EXPECT_EQ(f.dropped(), 2u);
}

TEST(VerdictFilter, EventsWithoutAVerdictAreHiddenByOne) {
    VerdictFilter f(Verdict::unknown);
    EXPECT_FALSE(f.pass(std::nullopt)); // not the same as a verdict of "unknown"
    EXPECT_TRUE(f.pass(Verdict::unknown));
    EXPECT_EQ(f.dropped(), 1u);
}

TEST(VerdictFilter, SetChangesTheVerdictAndKeepsTheCount) {
    VerdictFilter f(Verdict::not_idle);
    EXPECT_FALSE(f.pass(Verdict::no_socket));
    f.set(Verdict::no_socket);
    EXPECT_TRUE(f.pass(Verdict::no_socket));
    f.set(std::nullopt);
    EXPECT_TRUE(f.pass(Verdict::not_idle));
    EXPECT_EQ(f.dropped(), 1u);
}
