// SIGHUP with --config: which changed settings a running session can take on
// (they only steer userspace stages) and which need a restart (they are baked
// into the loaded BPF programs, the ring buffer, the output or the listener).
// Pure, so the classification is unit-tested.
#pragma once

#include <string>
#include <vector>

#include "event/options.hpp"

namespace rstwatch {

struct ReloadPlan {
    // The options to run with: `running` with every safe change of `loaded`.
    TraceOptions next;
    std::vector<std::string> applied;      // flag names, e.g. "max-events-per-sec"
    std::vector<std::string> need_restart; // flag names whose change is NOT applied
};

ReloadPlan plan_reload(const TraceOptions &running, const TraceOptions &loaded);

// One stderr line describing a plan ("config reloaded: ...").
std::string describe(const ReloadPlan &plan, const std::string &config_path);

} // namespace rstwatch
