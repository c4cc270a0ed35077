// Small shared pieces of the bench programs: flag parsing, clocks, a private
// network namespace, the kernel's TCP counters, and one-line JSON results.
// Header-only so each bench program stays a single translation unit.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <net/if.h>
#include <sched.h>
#include <sstream>
#include <string>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <vector>

namespace rwbench {

[[noreturn]] inline void die(const std::string &what) {
    std::fprintf(stderr, "%s\n", what.c_str());
    std::exit(1);
}

[[noreturn]] inline void die_errno(const std::string &what) {
    die(what + ": " + std::strerror(errno));
}

inline std::uint64_t mono_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::uint64_t(ts.tv_sec) * 1'000'000'000ull + std::uint64_t(ts.tv_nsec);
}

inline void sleep_until_ns(std::uint64_t t) {
    timespec ts{};
    ts.tv_sec = time_t(t / 1'000'000'000ull);
    ts.tv_nsec = long(t % 1'000'000'000ull);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
    }
}

// "--key value" flags; every flag takes a value, unknown flags are fatal so a
// typo in a driver never silently measures the wrong thing.
class Flags {
  public:
    Flags(int argc, char **argv, std::vector<std::string> known, std::string usage)
        : usage_(std::move(usage)) {
        for (int i = 1; i < argc; ++i) {
            std::string k = argv[i];
            if (k == "-h" || k == "--help") {
                std::printf("%s", usage_.c_str());
                std::exit(0);
            }
            if (k.rfind("--", 0) != 0 || i + 1 >= argc) bad("expected --flag value at " + k);
            k = k.substr(2);
            bool ok = false;
            for (auto &n : known)
                ok = ok || n == k;
            if (!ok) bad("unknown flag --" + k);
            values_[k] = argv[++i];
        }
    }
    std::string str(const std::string &k, const std::string &def) const {
        auto it = values_.find(k);
        return it == values_.end() ? def : it->second;
    }
    double num(const std::string &k, double def) const {
        auto it = values_.find(k);
        if (it == values_.end()) return def;
        char *end = nullptr;
        double v = std::strtod(it->second.c_str(), &end);
        if (!end || *end || it->second.empty()) bad("--" + k + ": not a number: " + it->second);
        return v;
    }
    bool has(const std::string &k) const { return values_.count(k) != 0; }
    [[noreturn]] void bad(const std::string &why) const {
        std::fprintf(stderr, "%s\n%s", why.c_str(), usage_.c_str());
        std::exit(2);
    }

  private:
    std::string usage_;
    std::map<std::string, std::string> values_;
};

// A new network namespace with loopback up: nothing else on the host shares
// its sockets or its SNMP counters, so counter deltas are exactly ours.
// Needs CAP_SYS_ADMIN.
inline void enter_private_netns() {
    if (unshare(CLONE_NEWNET) != 0) die_errno("unshare(CLONE_NEWNET) (needs root)");
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die_errno("socket");
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    if (ioctl(fd, SIOCGIFFLAGS, &ifr) != 0) die_errno("SIOCGIFFLAGS lo");
    ifr.ifr_flags = short(ifr.ifr_flags | IFF_UP);
    if (ioctl(fd, SIOCSIFFLAGS, &ifr) != 0) die_errno("SIOCSIFFLAGS lo up");
    close(fd);
}

// Inode of the calling thread's network namespace (what tracers report).
inline std::uint64_t netns_inode() {
    struct stat st {};
    if (stat("/proc/self/ns/net", &st) != 0) return 0;
    return st.st_ino;
}

// Tcp (/proc/net/snmp) and TcpExt (/proc/net/netstat) counters of the caller's
// network namespace, as "Tcp.OutRsts", "TcpExt.TCPAbortOnData", ...
inline std::map<std::string, long long> tcp_counters() {
    std::map<std::string, long long> out;
    for (const char *path : {"/proc/net/snmp", "/proc/net/netstat"}) {
        std::ifstream f(path);
        std::string names, values;
        while (std::getline(f, names) && std::getline(f, values)) {
            std::istringstream n(names), v(values);
            std::string prefix, vprefix, key;
            n >> prefix;
            v >> vprefix;
            if (prefix != "Tcp:" && prefix != "TcpExt:") continue;
            prefix.pop_back();
            long long x = 0;
            while (n >> key && v >> x)
                out[prefix + "." + key] = x;
        }
    }
    return out;
}

// The counters a reset moves, as deltas between two snapshots.
inline std::string counter_deltas_json(const std::map<std::string, long long> &a,
                                       const std::map<std::string, long long> &b) {
    static const char *keys[] = {"Tcp.OutRsts",
                                 "Tcp.AttemptFails",
                                 "Tcp.EstabResets",
                                 "Tcp.ActiveOpens",
                                 "Tcp.PassiveOpens",
                                 "TcpExt.TCPAbortOnData",
                                 "TcpExt.TCPAbortOnClose",
                                 "TcpExt.TCPAbortOnLinger"};
    std::string s = "{";
    for (const char *k : keys) {
        auto ia = a.find(k), ib = b.find(k);
        if (ia == a.end() || ib == b.end()) continue;
        if (s.size() > 1) s += ",";
        s += "\"" + std::string(k) + "\":" + std::to_string(ib->second - ia->second);
    }
    return s + "}";
}

} // namespace rwbench
