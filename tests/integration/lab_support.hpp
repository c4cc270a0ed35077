// The middlebox lab (scripts/lab.sh) for integration tests other than
// lab_test.cpp: one lab per object, up in the constructor, down in the
// destructor, names unique per test process.
#pragma once

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

} // namespace rwtest
