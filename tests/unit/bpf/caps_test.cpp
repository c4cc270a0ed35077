#include <fstream>
#include <gtest/gtest.h>

#include "bpf/caps.hpp"
#include "util/error.hpp"

using namespace rstwatch;

namespace {

std::uint64_t set_of(std::initializer_list<Cap> caps) {
    std::uint64_t s = 0;
    for (Cap c : caps)
        s |= std::uint64_t(1) << int(c);
    return s;
}

const std::vector<CapNeed> kTrace = {
    {Cap::bpf, "maps"}, {Cap::perfmon, "tracing"}, {Cap::net_admin, "cgroup/setsockopt"}};

std::string env_error(const std::vector<CapNeed> &need, std::uint64_t eff) {
    try {
        require_caps("rstwatch trace", need, eff);
    } catch (const EnvironmentError &e) {
        EXPECT_EQ(e.code(), Exit::environment);
        return e.what();
    }
    return {};
}

} // namespace

TEST(Caps, NamesMatchTheKernelHeader) {
    EXPECT_EQ(cap_name(Cap::bpf), "CAP_BPF");
    EXPECT_EQ(cap_name(Cap::perfmon), "CAP_PERFMON");
    EXPECT_EQ(cap_name(Cap::net_admin), "CAP_NET_ADMIN");
    EXPECT_EQ(cap_name(Cap::dac_read_search), "CAP_DAC_READ_SEARCH");
    EXPECT_EQ(cap_name(0), "CAP_CHOWN");
    EXPECT_EQ(cap_name(cap_last()), "CAP_CHECKPOINT_RESTORE");
    EXPECT_EQ(cap_name(99), "CAP_99");
    for (int c = 0; c <= cap_last(); ++c)
        EXPECT_EQ(cap_from_name(cap_name(c)), c);
    EXPECT_EQ(cap_from_name("bpf"), int(Cap::bpf));
    EXPECT_FALSE(cap_from_name("CAP_NOPE"));
}

TEST(Caps, ExactSetSatisfiesAndEachRemovalIsNamed) {
    const std::uint64_t exact = set_of({Cap::bpf, Cap::perfmon, Cap::net_admin});
    EXPECT_EQ(env_error(kTrace, exact), "");
    for (const auto &n : kTrace) {
        std::string msg = env_error(kTrace, exact & ~(std::uint64_t(1) << int(n.cap)));
        EXPECT_NE(msg.find("missing " + cap_name(n.cap) + " (" + n.why + ")"), std::string::npos)
            << msg;
        EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
    std::string none = env_error(kTrace, 0);
    EXPECT_NE(none.find("CAP_BPF"), std::string::npos);
    EXPECT_NE(none.find("CAP_PERFMON"), std::string::npos);
    EXPECT_NE(none.find("AmbientCapabilities=CAP_BPF CAP_PERFMON CAP_NET_ADMIN"), std::string::npos)
        << none;
}

TEST(Caps, SysAdminStandsInAsTheKernelAllows) {
    EXPECT_TRUE(missing_caps(set_of({Cap::sys_admin}), kTrace).empty());
    EXPECT_TRUE(
        missing_caps(set_of({Cap::dac_override}), {{Cap::dac_read_search, "tracefs"}}).empty());
    // ...but not the other way round.
    EXPECT_EQ(
        missing_caps(set_of({Cap::bpf, Cap::perfmon, Cap::net_admin}), {{Cap::sys_admin, "mount"}})
            .size(),
        1u);
}

TEST(Caps, EffectiveSetIsReadable) {
    // Whatever this test runs as, capget works and agrees with /proc.
    std::ifstream in("/proc/self/status");
    std::string line;
    std::uint64_t from_proc = 0;
    while (std::getline(in, line))
        if (line.rfind("CapEff:", 0) == 0) from_proc = std::stoull(line.substr(7), nullptr, 16);
    EXPECT_EQ(effective_caps(), from_proc);
}
