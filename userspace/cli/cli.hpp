// CLI stage: argv -> validated options. Pure (no BPF, no privileges), so the
// whole table of bad inputs is unit-tested; --cgroup is checked against the
// filesystem later, by resolve_cgroup_option.
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

// --cgroup to the cgroup's id and depth (and, for enforce, its directory):
// the filesystem check parse_cli leaves to the command, which runs it where it
// starts, before anything is opened or loaded (userspace/cmd/); --check-config
// runs it too. Throws UsageError (exit 2) naming --cgroup, with the --config
// line when the value came from the file, as parse_cli's errors do.
void resolve_cgroup_option(TraceOptions &o);
void resolve_cgroup_option(EnforceOptions &o);

// Helpers shared with other subcommands and tests.
std::uint32_t parse_events(const std::string &list); // RW_EMIT_* | kEventSummary

} // namespace rstwatch
