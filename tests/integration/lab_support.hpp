// The middlebox lab (scripts/lab.sh) for the integration tests: one lab per
// object, up in the constructor, down in the destructor, names unique per
// test process.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <map>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

#include "harness.hpp"

namespace rwtest {

inline std::string lab_script() {
    return std::string(RW_SOURCE_DIR) + "/scripts/lab.sh";
}

// Empty when the lab can run here; else why not.
inline std::string lab_unavailable_reason() {
    if (geteuid() != 0) return "not running as root (the lab creates network namespaces)";
    for (const char *tool : {"/usr/sbin/nft", "/usr/sbin/ip"})
        if (access(tool, X_OK) != 0)
            return std::string(tool) + " missing (Debian packages nftables, iproute2)";
    return {};
}

#define RW_REQUIRE_LAB_HERE()                                                                      \
    do {                                                                                           \
        std::string why_ = rwtest::lab_unavailable_reason();                                       \
        if (!why_.empty()) GTEST_SKIP() << "lab test skipped: " << why_;                           \
    } while (0)

// A lab test that also loads BPF (trace, audit, enforce): BPF's reason first.
#define RW_REQUIRE_BPF_LAB()                                                                       \
    do {                                                                                           \
        RW_REQUIRE_BPF();                                                                          \
        RW_REQUIRE_LAB_HERE();                                                                     \
    } while (0)

class LabNet {
  public:
    LabNet(const std::string &tag, const std::string &mode, int ct_timeout_s) {
        static int seq = 0;
        name_ = tag + std::to_string(getpid()) + "_" + std::to_string(seq++);
        std::string out = sh(lab_script() + " --name " + name_ + " --mode " + mode +
                             " --ct-timeout " + std::to_string(ct_timeout_s) + " up");
        std::istringstream in(out);
        std::string line;
        while (std::getline(in, line)) {
            auto eq = line.find('=');
            if (eq != std::string::npos) env_[line.substr(0, eq)] = line.substr(eq + 1);
        }
        up_ = env_.count("CLIENT_NS") && env_.count("SERVER_ADDR");
        EXPECT_TRUE(up_) << "lab.sh up printed: " << out;
    }
    ~LabNet() {
        std::string cmd = lab_script() + " --name " + name_ + " down >/dev/null 2>&1";
        EXPECT_EQ(std::system(cmd.c_str()), 0) << "lab.sh down failed for " << name_;
    }
    LabNet(const LabNet &) = delete;
    LabNet &operator=(const LabNet &) = delete;

    bool up() const { return up_; }
    const std::string &name() const { return name_; }
    const std::string &operator[](const std::string &key) const { return env_.at(key); }
    // A namespace inode lab.sh printed (*_NETNS_INODE), as events carry it.
    std::uint64_t inode(const std::string &key) const { return std::stoull(env_.at(key)); }
    // argv that runs a command inside one of the lab's namespaces (`ip netns
    // exec` execs it: the pid we start owns the sockets).
    std::vector<std::string> in(const std::string &ns_key, std::vector<std::string> argv) const {
        std::vector<std::string> full{"/usr/sbin/ip", "netns", "exec", env_.at(ns_key)};
        full.insert(full.end(), argv.begin(), argv.end());
        return full;
    }

  private:
    std::string name_;
    std::map<std::string, std::string> env_;
    bool up_ = false;
};

// `rstwatch trace` of the lab client's namespace, with `flags` added.
inline Session trace_client_netns(const LabNet &lab, std::vector<std::string> flags) {
    flags.insert(flags.begin(), {"--events", "reset,timeout"});
    flags.insert(flags.end(), {"--netns", lab["CLIENT_NETNS_INODE"]});
    return Session(flags);
}

// Events of one connection seen from the client: owned by `pid`.
inline std::vector<json> owned_by(const std::vector<json> &events, const std::string &type,
                                  pid_t pid) {
    std::vector<json> out;
    for (auto &e : of_type(events, type))
        if (e["process"].is_object() && e["process"]["pid"] == pid) out.push_back(e);
    return out;
}

} // namespace rwtest
