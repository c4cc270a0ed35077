// `rstwatch probe HOST:PORT`: measures the idle timeout of the middlebox on the
// path to a service with payload-free keepalive probes (docs/probe.md).
// Options are parsed by probe_cli.cpp; run_probe() drives the engine with the
// search policy and prints probe_start / probe_result / probe_summary.
#pragma once

#include <chrono>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "probe_policy.hpp"

namespace CLI {
class App;
}

namespace rstwatch {

struct ProbeOptions {
    std::string target; // HOST:PORT as given (resolved when the probe starts)
    probe::PolicyConfig policy;
    std::chrono::milliseconds max_time{3 * 3600 * 1000};
    bool text = false;
};

// CLI11 wiring, kept here so that the CLI files only register the subcommand.
struct ProbeCliRaw {
    std::string target, connections, precision, max_time, min, max, ladder, interval,
        format = "json";
};
CLI::App *add_probe_subcommand(CLI::App &app, ProbeCliRaw &raw);
// Validates the raw values; throws UsageError naming the flag and value.
ProbeOptions finish_probe_options(const ProbeCliRaw &raw);

// Runs the probe; returns the exit code (0: a result, 4: no connection could
// be made). Throws UsageError / EnvironmentError.
int run_probe(const ProbeOptions &opts);
int run_probe(const ProbeOptions &opts, std::ostream &out);

} // namespace rstwatch
