// `rstwatch probe HOST:PORT`: measures the idle timeout of the middlebox on the
// path to a service with payload-free keepalive probes (docs/probe.md).
// run_probe() drives the engine with the search policy and prints probe_start,
// probe_result and probe_summary.
#pragma once

#include <ostream>

#include "event/options.hpp"

namespace rstwatch {

// Runs the probe; returns the exit code (0: a result). Throws UsageError (bad
// target), EnvironmentError (a keepalive option refused), Error(runtime) when
// no connection could be made.
int run_probe(const ProbeOptions &opts);
int run_probe(const ProbeOptions &opts, std::ostream &out);

} // namespace rstwatch
