#include <gtest/gtest.h>

#include "trace/rate_limit.hpp"

using namespace rstwatch;

namespace {
constexpr std::uint64_t kS = 1'000'000'000;
constexpr std::uint64_t kT0 = 1000 * kS;
} // namespace

TEST(TokenBucket, StartsFullThenRefusesUntilRefilled) {
    TokenBucket b(10, 10, kT0);
    for (int i = 0; i < 10; ++i)
        EXPECT_TRUE(b.take(kT0)) << i;
    EXPECT_FALSE(b.take(kT0));
    EXPECT_FALSE(b.take(kT0 + kS / 10 - 1)); // one token takes 100 ms
    EXPECT_TRUE(b.take(kT0 + kS / 10));
    EXPECT_FALSE(b.take(kT0 + kS / 10));
}

TEST(TokenBucket, RefillIsCappedAtTheBurst) {
    TokenBucket b(5, 5, kT0);
    for (int i = 0; i < 5; ++i)
        b.take(kT0);
    int taken = 0;
    while (b.take(kT0 + 3600 * kS))
        ++taken;
    EXPECT_EQ(taken, 5); // an idle hour does not bank 18000 tokens
}

TEST(TokenBucket, ExactOverManySecondsWithoutDrift) {
    // 3 per second, asked every millisecond for 100 s: exactly 3*100 + the burst.
    TokenBucket b(3, 3, kT0);
    int taken = 0;
    for (std::uint64_t ms = 0; ms <= 100'000; ++ms)
        taken += b.take(kT0 + ms * 1'000'000);
    EXPECT_EQ(taken, 3 + 300);
}

TEST(TokenBucket, ATimeFromThePastAddsNothing) {
    TokenBucket b(1, 1, kT0);
    EXPECT_TRUE(b.take(kT0));
    EXPECT_FALSE(b.take(kT0 - 5 * kS)); // a record stamped earlier on another CPU
    EXPECT_FALSE(b.take(kT0 + kS - 1));
    EXPECT_TRUE(b.take(kT0 + kS));
}

TEST(TokenBucket, HugeRatesAndGapsDoNotOverflow) {
    TokenBucket b(1'000'000'000, 1'000'000'000, 0);
    EXPECT_TRUE(b.take(~std::uint64_t(0) - 1));
    TokenBucket c(1, 1, 0);
    EXPECT_TRUE(c.take(~std::uint64_t(0)));
}

TEST(TokenBucket, ReconfigureKeepsTokensButCapsThem) {
    TokenBucket b(100, 100, kT0);
    b.reconfigure(2, 2, kT0);
    EXPECT_TRUE(b.take(kT0));
    EXPECT_TRUE(b.take(kT0));
    EXPECT_FALSE(b.take(kT0));
    EXPECT_TRUE(b.take(kT0 + kS / 2)); // new rate: 2 per second
}

TEST(EventRateLimiter, ZeroMeansUnlimitedAndCountsNothing) {
    EventRateLimiter l(0, kT0);
    for (int i = 0; i < 100000; ++i)
        ASSERT_TRUE(l.admit(EventKind::tcp_reset, kT0));
    EXPECT_EQ(l.suppressed_total(), 0u);
}

TEST(EventRateLimiter, OneBucketForAllTypesSuppressionCountedPerType) {
    EventRateLimiter l(4, kT0);
    int admitted = 0;
    for (int i = 0; i < 10; ++i) {
        admitted += l.admit(EventKind::tcp_reset, kT0);
        admitted += l.admit(EventKind::tcp_timeout, kT0);
    }
    admitted += l.admit(EventKind::keepalive_set, kT0);
    EXPECT_EQ(admitted, 4);
    EXPECT_EQ(l.suppressed_total(), 17u);
    EXPECT_EQ(l.suppressed()[std::size_t(EventKind::tcp_reset)], 8u);
    EXPECT_EQ(l.suppressed()[std::size_t(EventKind::tcp_timeout)], 8u);
    EXPECT_EQ(l.suppressed()[std::size_t(EventKind::keepalive_set)], 1u);
    EXPECT_EQ(l.suppressed()[std::size_t(EventKind::connection_closed)], 0u);
}

TEST(EventRateLimiter, EveryEventIsAdmittedOrCounted) {
    EventRateLimiter l(1000, kT0);
    std::uint64_t admitted = 0, offered = 0;
    // A storm: 50,000 events over 5 s.
    for (std::uint64_t i = 0; i < 50000; ++i, ++offered)
        admitted += l.admit(EventKind::tcp_reset, kT0 + i * 100'000);
    EXPECT_EQ(admitted + l.suppressed_total(), offered);
    EXPECT_EQ(admitted, 1000u + 4999u); // burst + 1000/s over 4.9999 s
}

TEST(EventRateLimiter, SetRateFromUnlimitedStartsWithAFullSecondAndKeepsCounts) {
    EventRateLimiter l(2, kT0);
    l.admit(EventKind::tcp_reset, kT0);
    l.admit(EventKind::tcp_reset, kT0);
    EXPECT_FALSE(l.admit(EventKind::tcp_reset, kT0));
    l.set_rate(0, kT0);
    EXPECT_TRUE(l.admit(EventKind::tcp_reset, kT0));
    l.set_rate(3, kT0 + kS);
    int n = 0;
    while (l.admit(EventKind::tcp_reset, kT0 + kS))
        ++n;
    EXPECT_EQ(n, 3);
    EXPECT_EQ(l.suppressed_total(), 2u);
    EXPECT_EQ(l.rate(), 3u);
}
