#include <gtest/gtest.h>

#include "bpf/bpf_util.hpp"

using namespace rstwatch;

namespace {

// jiffies of a kernel with this HZ after `up` seconds, ticks starting `lag` s late.
std::uint64_t jiffies_at(unsigned hz, double up, double lag = 0.25) {
    return std::uint64_t(4294967296.0 - 300.0 * hz + (up - lag) * hz);
}

} // namespace

TEST(HzFromJiffies, EveryCandidateFromItsOwnCounter) {
    for (unsigned hz : {100u, 250u, 300u, 1000u}) {
        EXPECT_EQ(hz_from_jiffies(jiffies_at(hz, 12.5), 12.5), hz) << hz; // fresh VM
        EXPECT_EQ(hz_from_jiffies(jiffies_at(hz, 5358.25), 5358.25), hz) << hz;
        EXPECT_EQ(hz_from_jiffies(jiffies_at(hz, 86400.0 * 400), 86400.0 * 400), hz) << hz;
    }
}

TEST(HzFromJiffies, MeasuredOnThisMachineType) {
    // /proc/timer_list and CLOCK_MONOTONIC read together on the 6.18 host (HZ=250).
    EXPECT_EQ(hz_from_jiffies(4296231797ull, 5358.253393851), 250u);
}

TEST(HzFromJiffies, UndecidedNearThreeHundredSecondsOrOffTheCurve) {
    EXPECT_EQ(hz_from_jiffies(jiffies_at(250, 301.0), 301.0), std::nullopt);
    EXPECT_EQ(hz_from_jiffies(12345, 1000.0), std::nullopt); // no candidate explains it
    // A lagging tick of half a second still decides.
    EXPECT_EQ(hz_from_jiffies(jiffies_at(250, 40.0, 0.5), 40.0), 250u);
}
