// CLI stage: argv -> validated options. Pure (no BPF, no privileges), so the
// whole table of bad inputs is unit-tested.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "event/options.hpp"
#include "util/cgroup_fs.hpp" // resolve_cgroup, for the commands' callers

namespace rstwatch {

struct CliResult {
    std::optional<Command> command; // absent when help/version was printed
    int exit_code = 0;              // for help/version
    bool verbose = false;
};

// Throws UsageError (exit 2) with a one-line message naming the flag and value.
// Help and --version text goes to `out`.
CliResult parse_cli(const std::vector<std::string> &args, std::ostream &out);

// SIGHUP with --config: the running session's arguments parsed again, so the
// config file is re-read and validated exactly as at start. Throws UsageError.
TraceOptions reload_trace_options(const TraceOptions &running);

// Helpers shared with other subcommands and tests.
std::uint32_t parse_events(const std::string &list); // RW_EMIT_* | kEventSummary

} // namespace rstwatch
