// The event loop of a long-running command (trace, enforce): one epoll set
// holding a ring buffer's fd and the session's signalfd, woken by either or by
// the caller's next timed duty. Rule of agent/: trace/, event/, util/ only.
#pragma once

#include <cstdint>

#include "util/fd.hpp"

namespace rstwatch {

// Blocks SIGINT, SIGTERM and SIGHUP (call before any thread starts, so threads
// inherit the mask and the signalfd is the only receiver), ignores SIGPIPE
// (a closed stdout is an EPIPE write error, handled by the sink), and returns
// a non-blocking signalfd for them.
UniqueFd block_session_signals();

class SessionLoop {
  public:
    // ring_fd: RingReader::epoll_fd(); sigfd: from block_session_signals().
    SessionLoop(int ring_fd, int sigfd);

    struct Wake {
        bool ring = false;   // the ring buffer passed its wake-up watermark
        unsigned reopen = 0; // SIGHUPs: reopen outputs (and reload --config)
        bool stop = false;   // SIGINT or SIGTERM
    };
    // Sleeps at most timeout_ms (0: only polls), then reads every pending signal.
    Wake wait(int timeout_ms);

    // Milliseconds from now_ns until wake_ns (both monotonic), rounded up so the
    // duty is due when the wait ends; 0 when it is already due.
    static int timeout_ms(std::uint64_t wake_ns, std::uint64_t now_ns) {
        return wake_ns > now_ns ? int((wake_ns - now_ns + 999'999) / 1'000'000) : 0;
    }

  private:
    void watch(int fd, std::uint64_t tag);
    UniqueFd ep_;
    int sigfd_;
};

} // namespace rstwatch
