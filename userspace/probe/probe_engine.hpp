// rstwatch probe, engine: TCP connections that carry no payload and use the
// kernel's keepalive as the instrument. Each connection gets TCP_KEEPIDLE = T,
// TCP_KEEPCNT = 1 and a short TCP_KEEPINTVL: after T of silence the kernel
// sends one probe; its answer (ACK, RST, nothing) says whether the path still
// remembers the connection. The engine only classifies how each connection
// ends; which T to try is the policy's business (probe_policy.hpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <sys/socket.h>
#include <vector>

#include "probe/probe_policy.hpp"

namespace rstwatch::probe {

using Clock = std::chrono::steady_clock;

// HOST:PORT resolved: numeric IPv4, [IPv6]:PORT, or a name (first address).
struct Target {
    std::string spec; // as given
    std::string host;
    std::uint16_t port = 0;
    sockaddr_storage addr{};
    socklen_t addr_len = 0;
    std::string addr_text; // numeric
    bool ipv6 = false;
};
// Throws UsageError naming HOST:PORT when it cannot be parsed or resolved.
Target resolve_target(const std::string &spec);

struct Result {
    milliseconds keepidle{0};
    Outcome outcome = Outcome::error;
    // Silence before the end: since the handshake or the server's last data.
    milliseconds ended_after{0};
    // The idle time the answer is about (see Observation); none for error/cancelled.
    std::optional<milliseconds> evidence;
    std::string error;  // errno name (ECONNRESET, ETIMEDOUT, ECONNREFUSED, ...) or empty
    std::string detail; // keepalive_ack, rst_answering_probe, probe_unanswered, fin, ...
    std::uint16_t local_port = 0;
    bool server_sent_data = false;
};

// Non-blocking connections polled together. Not thread-safe.
class Engine {
  public:
    Engine(Target target, milliseconds interval,
           milliseconds connect_timeout = milliseconds(10000));
    ~Engine();
    Engine(const Engine &) = delete;
    Engine &operator=(const Engine &) = delete;

    // One connection per keepidle value (whole seconds). Throws
    // EnvironmentError when the kernel refuses a keepalive option.
    void start(const std::vector<milliseconds> &keepidles);
    // Waits until connections end or `until`; returns the ones that ended.
    // Returns early (possibly empty) when interrupted by a signal.
    std::vector<Result> wait(Clock::time_point until);
    // Ends connections whose answer is no longer needed.
    std::vector<Result> cancel(const std::vector<milliseconds> &keepidles, const std::string &why);
    std::vector<Result> cancel_all(const std::string &why);
    std::vector<milliseconds> active() const;

  private:
    struct Conn;
    std::optional<Result> check(Conn &c, Clock::time_point now, bool readable);
    Result finish(Conn &c, Outcome o, Clock::time_point now, std::string error, std::string detail);

    Target target_;
    milliseconds interval_, connect_timeout_;
    std::vector<Conn> conns_;
};

} // namespace rstwatch::probe
