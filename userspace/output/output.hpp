// Buffered output: formatted lines accumulate in a buffer and go to the sink
// once per ring-buffer drain (never held while idle), so a storm costs one
// write(2) per batch instead of one per event. Knows no formatter: trace and
// enforce each format with their own into buf().
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "event/event_kind.hpp"
#include "output/sink.hpp"

namespace rstwatch {

class Output {
  public:
    explicit Output(std::unique_ptr<Sink> sink);
    std::string &buf() { return buf_; }
    // Call after formatting an event line (not for session_* or summaries).
    void event_added(EventKind kind = EventKind::other) {
        event_ends_.push_back({buf_.size(), kind});
    }
    // Writes the buffer. Returns false once the reader has gone (EPIPE).
    bool flush();
    bool closed() const { return closed_; }
    Sink &sink() { return *sink_; }
    std::uint64_t emitted() const { return emitted_; }
    const EventCounts &emitted_by_kind() const { return emitted_by_kind_; }
    std::uint64_t dropped() const { return dropped_; }

  private:
    std::unique_ptr<Sink> sink_;
    std::string buf_;
    // End offset in buf_ of each event line, to count what a partial write lost.
    std::vector<std::pair<std::size_t, EventKind>> event_ends_;
    std::uint64_t emitted_ = 0;
    EventCounts emitted_by_kind_{};
    std::uint64_t dropped_ = 0;
    bool closed_ = false;
};

} // namespace rstwatch
