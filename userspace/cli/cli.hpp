// CLI stage: argv -> validated options. Pure (no BPF, no privileges), so the
// whole table of bad inputs is unit-tested.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "event/options.hpp"

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
// Resolves a cgroup v2 path (absolute, or relative to the cgroup2 mount) to
// its id and depth (and, if dir is given, its absolute directory). Throws
// UsageError if it does not exist or is not cgroup v2.
void resolve_cgroup(const std::string &path, std::uint64_t &id, int &level,
                    std::string *dir = nullptr);

} // namespace rstwatch
