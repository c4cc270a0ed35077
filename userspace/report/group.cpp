// rstwatch report: processes grouped by (host, comm, cgroup). A fleet runs
// many identical workers; their pids share one cause and one remedy, so the
// text report shows one row and one fix per group (issue 17).
#include <algorithm>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "report/aggregate.hpp"

namespace rstwatch {

namespace {

struct GroupKey {
    std::uint32_t host;
    bool owned;
    std::string_view comm, cgroup; // views into ReportData::processes
    bool operator==(const GroupKey &o) const = default;
};

struct GroupKeyHash {
    std::size_t operator()(const GroupKey &k) const {
        const std::hash<std::string_view> h;
        std::size_t x = h(k.comm) * 31 + h(k.cgroup);
        return x * 1000003u ^ (std::size_t(k.host) << 1 | std::size_t(k.owned));
    }
};

void add_member(ProcessGroup &g, const ProcessReport &p, std::uint32_t id) {
    g.procs.push_back(id);
    g.connections += p.connections();
    g.without_keepalive += p.without_keepalive();
    g.resets += p.resets_total();
    g.timeouts += p.timeouts_total();
    for (std::size_t v = 0; v < kVerdictCount; ++v) {
        g.resets_by_verdict[v] += p.resets[v];
        g.timeouts_by_verdict[v] += p.timeouts[v];
    }
    g.mb_deaths += p.mb_deaths;
    g.mb_ka_off += p.mb_ka_off;
    g.mb_ka_on += p.mb_ka_on;
    g.mb_min_idle_ms = std::min(g.mb_min_idle_ms, p.mb_min_idle_ms);
    g.mb_max_ka_idle_s = std::max(g.mb_max_ka_idle_s, p.mb_max_ka_idle_s);
    g.ka_idle_from_socket = g.ka_idle_from_socket || p.ka_idle_from_socket;
}

} // namespace

std::vector<ProcessGroup> group_processes(const ReportData &d) {
    std::vector<ProcessGroup> groups;
    std::unordered_map<GroupKey, std::uint32_t, GroupKeyHash> index;
    index.reserve(d.worst_first.size());
    for (std::uint32_t id : d.worst_first) {
        const ProcessReport &p = d.processes[id];
        // An unowned pseudo-process has no comm: one group per host.
        const GroupKey k{p.host, p.owned, p.owned ? std::string_view(p.comm) : "",
                         p.owned ? std::string_view(p.cgroup) : ""};
        auto [it, fresh] = index.try_emplace(k, std::uint32_t(groups.size()));
        if (fresh) {
            ProcessGroup &g = groups.emplace_back();
            g.host = p.host;
            g.first = id;
        }
        add_member(groups[it->second], p, id);
    }
    // Worst first by what the whole group suffered: twelve replicas with ten
    // deaths each come before one process with twenty.
    std::stable_sort(groups.begin(), groups.end(),
                     [](const ProcessGroup &a, const ProcessGroup &b) {
                         return std::make_pair(a.mb_deaths, a.resets + a.timeouts) >
                                std::make_pair(b.mb_deaths, b.resets + b.timeouts);
                     });
    return groups;
}

} // namespace rstwatch
