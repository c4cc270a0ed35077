// rw_rst_load: makes TCP resets on loopback at a set rate or as fast as one
// thread can, bounded in count and time, and prints one JSON line saying how
// many it caused, cross-checked with the kernel's own counters.
//
//   rw_rst_load --mode closed|abort [--rate N] [--count N] [--duration S]
//               [--netns 1] [--addr 127.0.0.1] [--port P]
//
// closed: connect() to a port that is bound but not listening: the kernel
//         answers the SYN with an RST that has no socket (tcp_send_reset with
//         sk == NULL) and the connecting socket receives it (tcp_receive_reset
//         in SYN_SENT). One reset per connect, two trace events.
// abort:  connect + accept on its own listener, then close the client with
//         SO_LINGER {1, 0}: an RST sent on a real, owned, established socket
//         (tcp_send_reset from tcp_disconnect) and received by the accepted one.
//         One reset per connection, two trace events; no TIME_WAIT piles up.
//
// --netns 1 runs in a private network namespace (root): the Tcp/TcpExt
// counter deltas are then exactly this program's; in the host namespace other
// activity moves them too, so both are printed and the driver says which.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "bench_util.hpp"

using namespace rwbench;

namespace {

const char *kUsage =
    "usage: rw_rst_load --mode closed|abort [--rate N/s (0 = max)] [--count N]\n"
    "                   [--duration SECONDS] [--netns 0|1] [--addr A] [--port P]\n";

struct Result {
    std::uint64_t ops = 0, resets = 0;
    std::map<int, std::uint64_t> errors; // errno -> count
};

sockaddr_in v4(const std::string &addr, int port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(std::uint16_t(port));
    if (inet_pton(AF_INET, addr.c_str(), &a.sin_addr) != 1) die("bad --addr " + addr);
    return a;
}

int bound_socket(sockaddr_in &a) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die_errno("socket");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof(a)) != 0) die_errno("bind");
    socklen_t len = sizeof(a);
    getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len);
    return fd;
}

// One reset per call. Returns false with errno set when the attempt failed in
// a way that caused no reset.
bool closed_once(const sockaddr_in &dst) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    int r = connect(fd, reinterpret_cast<const sockaddr *>(&dst), sizeof(dst));
    int e = errno;
    close(fd);
    errno = r == 0 ? EISCONN : e;
    return r != 0 && e == ECONNREFUSED;
}

bool abort_once(int listener, const sockaddr_in &dst) {
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c < 0) return false;
    if (connect(c, reinterpret_cast<const sockaddr *>(&dst), sizeof(dst)) != 0) {
        int e = errno;
        close(c);
        errno = e;
        return false;
    }
    int a = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (a < 0) {
        int e = errno;
        close(c);
        errno = e;
        return false;
    }
    linger lg{1, 0};
    setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(c); // the RST; loopback delivers it to `a` before close() returns
    close(a);
    return true;
}

} // namespace

int main(int argc, char **argv) {
    Flags f(argc, argv, {"mode", "rate", "count", "duration", "netns", "addr", "port"}, kUsage);
    const std::string mode = f.str("mode", "");
    if (mode != "closed" && mode != "abort") f.bad("--mode must be closed or abort");
    const double rate = f.num("rate", 0);
    const auto count = std::uint64_t(f.num("count", 100000));
    const double duration = f.num("duration", 10);
    if (rate < 0 || count == 0 || duration <= 0 || duration > 600)
        f.bad("need --rate >= 0, --count > 0, 0 < --duration <= 600");
    if (f.num("netns", 0) != 0) enter_private_netns();

    sockaddr_in dst = v4(f.str("addr", "127.0.0.1"), int(f.num("port", 0)));
    // closed: bound and never listening, so the port stays ours and closed.
    int sock = bound_socket(dst);
    if (mode == "abort" && listen(sock, 128) != 0) die_errno("listen");

    auto before = tcp_counters();
    rusage ru0{}, ru1{};
    getrusage(RUSAGE_SELF, &ru0);
    Result res;
    const std::uint64_t t0 = mono_ns();
    const std::uint64_t end = t0 + std::uint64_t(duration * 1e9);
    const double period_ns = rate > 0 ? 1e9 / rate : 0;
    std::uint64_t now = t0;
    while (res.ops < count && now < end) {
        if (period_ns > 0) {
            // Pace against the schedule, not the previous call, so a slow
            // stretch is caught up; sleep only when clearly early.
            auto due = t0 + std::uint64_t(double(res.ops) * period_ns);
            if (due > now + 100'000) sleep_until_ns(due);
        }
        bool ok = mode == "closed" ? closed_once(dst) : abort_once(sock, dst);
        ++res.ops;
        if (ok)
            ++res.resets;
        else
            ++res.errors[errno];
        now = mono_ns();
    }
    const double elapsed = double(now - t0) / 1e9;
    // CPU this process spent, kernel included: the loopback RST is processed
    // (and every BPF program runs) in its context. Unlike the wall rate it
    // does not depend on how much of a CPU the scheduler gave us.
    getrusage(RUSAGE_SELF, &ru1);
    auto secs = [](const timeval &a, const timeval &b) {
        return double(b.tv_sec - a.tv_sec) + double(b.tv_usec - a.tv_usec) / 1e6;
    };
    const double cpu_user = secs(ru0.ru_utime, ru1.ru_utime);
    const double cpu_sys = secs(ru0.ru_stime, ru1.ru_stime);
    auto after = tcp_counters();
    close(sock);

    // The cross-check. Every reset moves Tcp.OutRsts once; an abort (close
    // with SO_LINGER {1, 0}) also moves one TcpExt.TCPAbortOn* counter (6.x
    // counts it as TCPAbortOnData, older kernels as TCPAbortOnClose or
    // TCPAbortOnLinger). In a private namespace the deltas must equal our
    // count; in the host namespace other traffic can only add to them.
    const bool priv = f.num("netns", 0) != 0;
    auto delta = [&](const char *k) {
        auto ia = before.find(k), ib = after.find(k);
        return ia == before.end() || ib == after.end() ? -1LL : ib->second - ia->second;
    };
    auto agrees = [&](long long kernel) {
        auto ours = (long long)res.resets;
        return priv ? kernel == ours : kernel >= ours;
    };
    const long long out_rsts = delta("Tcp.OutRsts");
    const long long aborts = mode == "abort" ? delta("TcpExt.TCPAbortOnData") +
                                                   delta("TcpExt.TCPAbortOnClose") +
                                                   delta("TcpExt.TCPAbortOnLinger")
                                             : (long long)res.resets;
    const bool kernel_agrees = agrees(out_rsts) && agrees(aborts);
    if (!kernel_agrees)
        std::fprintf(stderr,
                     "rw_rst_load: the kernel's counters disagree with ours: %llu resets, "
                     "Tcp.OutRsts +%lld, TcpExt.TCPAbortOn* +%lld (%s namespace)\n",
                     (unsigned long long)res.resets, out_rsts, aborts, priv ? "private" : "host");

    std::string errs = "{";
    for (auto [e, n] : res.errors) {
        if (errs.size() > 1) errs += ",";
        errs += "\"" + std::string(strerrorname_np(e) ? strerrorname_np(e) : "?") +
                "\":" + std::to_string(n);
    }
    errs += "}";
    std::printf("{\"mode\":\"%s\",\"rate_target\":%.0f,\"ops\":%llu,\"resets\":%llu,"
                "\"expected_events\":%llu,\"errors\":%s,\"elapsed_s\":%.4f,\"rate\":%.0f,"
                "\"cpu_user_s\":%.4f,\"cpu_sys_s\":%.4f,\"cpu_us_per_op\":%.3f,"
                "\"addr\":\"%s\",\"port\":%d,\"netns\":%llu,\"private_netns\":%s,\"pid\":%d,"
                "\"kernel\":%s,\"kernel_check\":\"%s\",\"kernel_agrees\":%s}\n",
                mode.c_str(), rate, (unsigned long long)res.ops, (unsigned long long)res.resets,
                (unsigned long long)res.resets * 2, errs.c_str(), elapsed,
                elapsed > 0 ? double(res.resets) / elapsed : 0.0, cpu_user, cpu_sys,
                res.ops ? (cpu_user + cpu_sys) * 1e6 / double(res.ops) : 0.0,
                f.str("addr", "127.0.0.1").c_str(), ntohs(dst.sin_port),
                (unsigned long long)netns_inode(), priv ? "true" : "false", int(getpid()),
                counter_deltas_json(before, after).c_str(), priv ? "equal" : "at_least",
                kernel_agrees ? "true" : "false");
    return res.resets == res.ops && kernel_agrees ? 0 : 1;
}
