// --metrics-listen: GET /metrics over HTTP (cpp-httplib from Debian), other
// paths 404. Bounded: a fixed number of worker threads and queue slots (excess
// connections get 503 and are closed), a byte limit on the request line and
// headers, and one deadline per connection, so slow or hostile clients cost a
// worker for a bounded time and never touch the event loop.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>

#include "trace/metrics.hpp"
#include "event/options.hpp"

namespace rstwatch {

struct MetricsHttpLimits {
    unsigned threads = 2;
    unsigned queue = 8;                        // accepted connections waiting for a worker
    std::size_t max_request_bytes = 16 * 1024; // request line + headers
    std::chrono::milliseconds deadline{5000};  // per connection, from when it was accepted
};

class MetricsServer {
  public:
    // Binds immediately (a port in use fails here, before BPF programs load)
    // and serves from its own threads until stop() or destruction.
    MetricsServer(const ListenAddress &addr, MetricsRegistry &registry,
                  MetricsHttpLimits limits = {});
    ~MetricsServer();
    MetricsServer(const MetricsServer &) = delete;
    MetricsServer &operator=(const MetricsServer &) = delete;

    // Ends in-flight requests, stops accepting and joins every thread. Idempotent.
    void stop();
    std::uint16_t port() const;
    // False if the accept loop ended by itself (an accept error it cannot retry).
    bool serving() const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace rstwatch
