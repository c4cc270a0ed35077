// `rstwatch probe` flags: registered on the CLI11 app by cli/ (one call), parsed
// and validated here, so the CLI files only wire the subcommand.
#pragma once

#include <string>

#include "event/options.hpp"

namespace CLI {
class App;
}

namespace rstwatch {

// Raw strings as typed, so every bad value gets the same one-line message.
struct ProbeCliRaw {
    std::string target, connections, precision, max_time, min, max, ladder, interval,
        format = "json";
};
CLI::App *add_probe_subcommand(CLI::App &app, ProbeCliRaw &raw);
// Validates the raw values; throws UsageError naming the flag and value.
ProbeOptions finish_probe_options(const ProbeCliRaw &raw);

} // namespace rstwatch
