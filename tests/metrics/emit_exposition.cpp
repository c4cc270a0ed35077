// Prints the /metrics text for a session with every family populated, for
// `promtool check metrics` (Debian package prometheus) in the unit suite. The
// privileged suite checks a real scrape of a running agent the same way.
#include <iostream>

#include "trace/metrics.hpp"

using namespace rstwatch;

int main() {
    MetricsRegistry::View v;
    v.build = {"0.1.0", "6.18.0", "cgroup", true, true, 1795556324.123};
    for (auto &dir : v.counters.resets)
        for (auto &n : dir)
            n = 1;
    v.counters.timeouts[2][0] = 3;
    v.counters.keepalive_set[1][1] = 2;
    v.counters.emitted.fill(4);
    v.counters.rate_limited[0] = 5;
    v.counters.ringbuf_lost = {1, 2, 3, 4};
    v.audit.runs = 3;
    v.audit.last_run_unix_s = 1795556324.5;
    v.audit.duration_s = 0.0123;
    v.audit.processes = 4;
    v.audit.by_comm = top_comm_gauges({}, 20);
    v.audit.by_comm.push_back({"java", 10, 8});
    v.audit.by_comm.push_back({"we\"ird\\name\n", 1, 1});
    v.audit.by_comm.push_back({"other", 3, 0});
    HttpCounters http;
    http.requests = 7;
    std::cout << render_prometheus(v, http);
}
