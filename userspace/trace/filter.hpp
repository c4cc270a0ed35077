// Filter stage (userspace half): what the kernel cannot decide because it
// needs the diagnose stage's verdict. pid, comm, port, netns and cgroup are
// filtered in BPF before a record is reserved (tracer.cpp sets them); this is
// --verdict only.
#pragma once

#include <cstdint>
#include <optional>

#include "event/diagnose.hpp"

namespace rstwatch {

class VerdictFilter {
  public:
    explicit VerdictFilter(std::optional<Verdict> wanted = std::nullopt) : wanted_(wanted) {}
    void set(std::optional<Verdict> wanted) { wanted_ = wanted; }
    const std::optional<Verdict> &wanted() const { return wanted_; }

    // Whether an event passes; `verdict` is nullopt for event types that carry
    // none (connection_closed, keepalive_set), which --verdict hides. Counts
    // what it drops.
    bool pass(std::optional<Verdict> verdict) {
        if (!wanted_ || verdict == wanted_) return true;
        ++dropped_;
        return false;
    }
    std::uint64_t dropped() const { return dropped_; }

  private:
    std::optional<Verdict> wanted_;
    std::uint64_t dropped_ = 0;
};

} // namespace rstwatch
