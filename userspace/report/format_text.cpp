// The human report: findings and fixes first, then the tables that back them.
#include <algorithm>
#include <cstdarg>
#include <cstdio>

#include "report/format.hpp"
#include "util/text_safety.hpp"

namespace rstwatch {

namespace {

constexpr std::size_t kMaxTextProcesses = 50;
constexpr std::size_t kMaxTextPairs = 20;
constexpr std::size_t kMaxTextHosts = 50;

void line(std::string &out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// Every line goes through append_terminal_safe: host names, comms, cgroups and
// addresses come from files any host of the fleet could write, so no field may
// reach the terminal with a control character (fuzz_report found a host name).
void line(std::string &out, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = std::vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if (std::size_t(n) >= sizeof buf) {
        std::string big(std::size_t(n) + 1, '\0');
        va_start(ap, fmt);
        std::vsnprintf(big.data(), big.size(), fmt, ap);
        va_end(ap);
        big.pop_back();
        append_terminal_safe(out, big, true);
    } else {
        append_terminal_safe(out, std::string_view(buf, std::size_t(n)), true);
    }
    out.push_back('\n');
}

std::string plural(std::uint64_t n, const char *one, const char *many) {
    return std::to_string(n) + " " + (n == 1 ? one : many);
}

std::string who(const ReportData &d, std::uint32_t proc) {
    const ProcessReport &p = d.processes[proc];
    if (!p.owned) return d.hosts[p.host].name + " (owner unknown)";
    return d.hosts[p.host].name + " " + p.comm + " (pid " + std::to_string(p.pid) + ")";
}

std::string ka_text(const PairSide &s, std::optional<std::uint64_t> bound) {
    switch (s.ka) {
    case KaState::on: {
        std::string t = "keepalive on (idle " + std::to_string(s.ka_idle_s) + "s";
        if (bound && std::uint64_t(s.ka_idle_s) * 1000 >= *bound) t += ", too slow for the bound";
        return t + ")";
    }
    case KaState::off:
        return "keepalive OFF";
    case KaState::unknown:
        break;
    }
    return "keepalive unknown";
}

std::string verdicts(const std::array<std::uint64_t, kVerdictCount> &r,
                     const std::array<std::uint64_t, kVerdictCount> &t) {
    std::string s;
    for (std::size_t i = 0; i < kVerdictCount; ++i) {
        if (!r[i] && !t[i]) continue;
        if (!s.empty()) s += ' ';
        s += std::string(to_string(Verdict(i))) + ":" + std::to_string(r[i] + t[i]);
    }
    return s.empty() ? "-" : s;
}

// One row per (host, comm, cgroup): counts summed over its pids, the smallest
// idle among its middlebox deaths. Per-pid rows: --format json.
void process_groups(const ReportData &d, std::string &out) {
    out += "\nPROCESSES (one row per host, comm and cgroup; worst first)\n";
    const std::size_t n = std::min(d.groups.size(), kMaxTextProcesses);
    std::size_t hw = 4, cw = 4;
    for (std::size_t i = 0; i < n; ++i) {
        const ProcessReport &p = d.processes[d.groups[i].first];
        hw = std::max(hw, std::min<std::size_t>(d.hosts[p.host].name.size(), 32));
        cw = std::max(cw, p.owned ? p.comm.size() : std::size_t(9));
    }
    line(out, "  %-*s %-*s %6s %7s %7s %7s %8s %9s %9s  %-24s %s", int(hw), "HOST", int(cw), "COMM",
         "PIDS", "CONNS", "NO-KA", "RESETS", "TIMEOUTS", "MIDDLEBOX", "MIN-IDLE", "VERDICTS",
         "CGROUP");
    for (std::size_t i = 0; i < n; ++i) {
        const ProcessGroup &g = d.groups[i];
        const ProcessReport &p = d.processes[g.first];
        line(out, "  %-*.*s %-*s %6zu %7llu %7llu %7llu %8llu %9llu %9s  %-24s %s", int(hw),
             int(hw), d.hosts[g.host].name.c_str(), int(cw), p.owned ? p.comm.c_str() : "(unowned)",
             g.procs.size(), (unsigned long long)g.connections,
             (unsigned long long)g.without_keepalive, (unsigned long long)g.resets,
             (unsigned long long)g.timeouts, (unsigned long long)g.mb_deaths,
             g.mb_min_idle_ms == UINT64_MAX ? "-" : human_ms(g.mb_min_idle_ms).c_str(),
             verdicts(g.resets_by_verdict, g.timeouts_by_verdict).c_str(),
             p.cgroup.empty() ? "-" : p.cgroup.c_str());
    }
    if (d.groups.size() > n)
        line(out, "  ... and %zu more groups (see --format json)", d.groups.size() - n);
}

void affected_and_fix(const ReportData &d, const Finding &f, std::string &out) {
    line(out, "    Affected processes (one fix per host, comm and cgroup):");
    for (const auto &a : f.affected_groups) {
        const ProcessGroup &g = d.groups[a.group];
        const std::string &cg = d.processes[g.first].cgroup;
        line(out, "      %s %s%s%s: %s, keepalive %s", d.hosts[g.host].name.c_str(),
             group_who(d, g).c_str(), cg.empty() ? "" : " in ", cg.c_str(),
             plural(a.deaths, "death", "deaths").c_str(), std::string(a.keepalive).c_str());
        if (!a.fix_command.empty()) {
            line(out, "        # %s", a.fix_what.c_str());
            line(out, "        %s", a.fix_command.c_str());
        }
    }
    if (f.affected_groups_omitted)
        line(out, "      ... and %llu more groups (see --format json)",
             (unsigned long long)f.affected_groups_omitted);
    line(out, "    Fix (keepalive idle %us, interval %us, %u probes):", f.advice.idle_s,
         f.advice.interval_s, f.advice.probes);
    for (const auto &c : f.commands) {
        line(out, "      # %s", c.what.c_str());
        line(out, "      %s", c.command.c_str());
    }
}

void finding_text(const ReportData &d, const Finding &f, std::optional<std::uint64_t> bound,
                  std::string &out) {
    line(out, "  * %s", f.summary.c_str());
    if (f.kind == FindingKind::one_side_keepalive) {
        for (std::size_t i : f.examples) {
            const PairReport &p = d.pairs[i];
            line(out, "      %s %s:%u %s  <->  %s %s:%u %s", who(d, p.a.proc).c_str(),
                 report_addr_text(p.a.local.addr).c_str(), p.a.local.port,
                 ka_text(p.a, bound).c_str(), who(d, p.b.proc).c_str(),
                 report_addr_text(p.b.local.addr).c_str(), p.b.local.port,
                 ka_text(p.b, bound).c_str());
        }
        return;
    }
    if (f.cluster.below_floor)
        line(out, "    %s died after less than %s idle (not counted in the bound).",
             plural(f.cluster.below_floor, "middlebox-caused death", "middlebox-caused deaths")
                 .c_str(),
             human_ms(kClusterFloorMs).c_str());
    if (f.inferred)
        line(out, "    %s: the peer host logged the connection and sent no RST.",
             plural(f.inferred, "reset origin inferred across hosts",
                    "reset origins inferred across hosts")
                 .c_str());
    if (f.kind != FindingKind::middlebox_idle_timeout) return;
    std::string presets;
    for (const auto &p : f.presets)
        presets += (presets.empty() ? "" : ", ") + std::string(p.name) + " (" +
                   std::to_string(p.timeout.count()) + "s, " + std::string(p.behaviour) + ")";
    line(out, "    Consistent named middleboxes: %s",
         presets.empty() ? "none (every named preset's timeout is longer than the bound)"
                         : presets.c_str());
    if (f.configured_ms)
        line(out, "    Configured --middlebox-timeout %s: %s", human_ms(*f.configured_ms).c_str(),
             *f.consistent_with_configured ? "consistent with the bound" : "LONGER than the bound");
    affected_and_fix(d, f, out);
}

void findings_text(const ReportResult &r, std::optional<std::uint64_t> bound, std::string &out) {
    const ReportData &d = r.data;
    out += "\nFINDINGS\n";
    if (r.findings.empty())
        line(out, "  none: no reset or timeout was attributed to a middlebox, and no connection "
                  "had keepalive on one end only.");
    for (const auto &f : r.findings)
        finding_text(d, f, bound, out);
}

void histogram_text(const IdleHistogram &h, std::string &out) {
    out += "\nIDLE BEFORE RESET/TIMEOUT (log2 buckets: all deaths, middlebox-caused)\n";
    std::uint64_t peak = 0;
    int lo = -1, hi = -1;
    for (int b = 0; b < 65; ++b) {
        peak = std::max(peak, h.all[b]);
        if (h.all[b] || h.middlebox[b]) {
            if (lo < 0) lo = b;
            hi = b;
        }
    }
    if (lo < 0) line(out, "  no reset or timeout with a known idle time");
    for (int b = lo; lo >= 0 && b <= hi; ++b) {
        const int bar = peak ? int((h.all[b] * 40 + peak - 1) / peak) : 0;
        std::string range = "[" + human_ms(IdleHistogram::lower(unsigned(b))) + ", " +
                            (b < 64 ? human_ms(IdleHistogram::upper(unsigned(b))) : "inf") + ")";
        line(out, "  %-18s %9llu %9llu  %s", range.c_str(), (unsigned long long)h.all[b],
             (unsigned long long)h.middlebox[b], std::string(std::size_t(bar), '#').c_str());
    }
    if (h.all_unknown)
        line(out, "  %-18s %9llu %9llu", "idle unknown", (unsigned long long)h.all_unknown,
             (unsigned long long)h.middlebox_unknown);
}

void pairs_text(const ReportData &d, std::optional<std::uint64_t> bound, std::string &out) {
    out += "\nBOTH ENDS SEEN\n";
    const PairCounts &pc = d.pair_counts;
    line(out,
         "  %llu connections with both ends in the input: %llu both with keepalive, %llu "
         "neither, %llu one side only, %llu unknown%s",
         (unsigned long long)pc.total, (unsigned long long)pc.both, (unsigned long long)pc.neither,
         (unsigned long long)pc.one_side, (unsigned long long)pc.unknown,
         pc.ambiguous ? (", " + std::to_string(pc.ambiguous) + " ambiguous 4-tuples").c_str() : "");
    for (std::size_t i = 0; i < d.pairs.size() && i < kMaxTextPairs; ++i) {
        const PairReport &p = d.pairs[i];
        line(
            out, "  %-8s %s %s:%u -> %s:%u, %s%s", std::string(to_string(p.status)).c_str(),
            who(d, p.a.proc).c_str(), report_addr_text(p.a.local.addr).c_str(), p.a.local.port,
            report_addr_text(p.a.remote.addr).c_str(), p.a.remote.port, ka_text(p.a, bound).c_str(),
            p.a.death != DeathKind::none ? (", " + std::string(to_string(p.a.death))).c_str() : "");
        line(
            out, "  %-8s %s %s:%u -> %s:%u, %s%s", "", who(d, p.b.proc).c_str(),
            report_addr_text(p.b.local.addr).c_str(), p.b.local.port,
            report_addr_text(p.b.remote.addr).c_str(), p.b.remote.port, ka_text(p.b, bound).c_str(),
            p.b.death != DeathKind::none ? (", " + std::string(to_string(p.b.death))).c_str() : "");
    }
    if (d.pairs.size() > kMaxTextPairs)
        line(out, "  ... and %zu more (see --format json)", d.pairs.size() - kMaxTextPairs);
}

void hosts_text(const ReportData &d, std::string &out) {
    out += "\nHOSTS\n";
    std::size_t hw = 4;
    for (std::size_t i = 0; i < d.hosts_order.size() && i < kMaxTextHosts; ++i)
        hw = std::max(hw, std::min<std::size_t>(d.hosts[d.hosts_order[i]].name.size(), 32));
    line(out, "  %-*s %9s %8s %6s %6s %8s %7s %8s %9s %9s", int(hw), "HOST", "EVENTS", "SESSIONS",
         "LOST", "PROCS", "CONNS", "RESETS", "TIMEOUTS", "MIDDLEBOX", "MIN-IDLE");
    for (std::size_t i = 0; i < d.hosts_order.size() && i < kMaxTextHosts; ++i) {
        const HostReport &x = d.hosts[d.hosts_order[i]];
        line(out, "  %-*.*s %9llu %8llu %6llu %6llu %8llu %7llu %8llu %9llu %9s", int(hw), int(hw),
             x.name.c_str(), (unsigned long long)x.events, (unsigned long long)x.sessions,
             (unsigned long long)x.lost, (unsigned long long)x.processes,
             (unsigned long long)x.connections, (unsigned long long)x.resets,
             (unsigned long long)x.timeouts, (unsigned long long)x.mb_deaths,
             x.mb_min_idle_ms == UINT64_MAX ? "-" : human_ms(x.mb_min_idle_ms).c_str());
    }
    if (d.hosts_order.size() > kMaxTextHosts)
        line(out, "  ... and %zu more (see --format json)", d.hosts_order.size() - kMaxTextHosts);
    for (const auto &x : d.hosts)
        if (x.lost)
            line(out,
                 "  note: %s lost %llu events (ring buffer or rate limit): its counts are "
                 "lower bounds",
                 x.name.c_str(), (unsigned long long)x.lost);
}

void input_text(const ReportResult &r, std::string &out) {
    const ReportData &d = r.data;
    out += "\nINPUT\n";
    for (const auto &in : r.inputs)
        line(out, "  %s: %llu lines, %llu events%s", terminal_safe(in.name).c_str(),
             (unsigned long long)in.lines, (unsigned long long)in.accepted,
             in.stats.gzip ? " (gzip)" : "");
    bool any = false;
    for (std::size_t i = 0; i < kLineProblemCount; ++i) {
        if (!r.problems[i]) continue;
        any = true;
        line(out, "  skipped %s: %llu (first: %s:%llu)",
             std::string(to_string(LineProblem(i))).c_str(), (unsigned long long)r.problems[i],
             terminal_safe(r.first_input[i]).c_str(), (unsigned long long)r.first_line[i]);
    }
    if (!r.unknown_events.empty()) {
        std::string names;
        for (const auto &n : r.unknown_events)
            names += (names.empty() ? "" : ", ") + terminal_safe(n); // any host can write any
        line(out, "  unknown event types: %s", names.c_str());
    }
    if (!any) line(out, "  no malformed lines");
    if (d.duplicates)
        line(out, "  %llu exact duplicate records counted once", (unsigned long long)d.duplicates);
}

} // namespace

void format_report_text(const ReportResult &r, std::string &out) {
    const ReportData &d = r.data;
    std::optional<std::uint64_t> bound;
    for (const auto &f : r.findings)
        if (f.kind == FindingKind::middlebox_idle_timeout) bound = f.cluster.bound_ms;

    line(out, "rstwatch report: %s, %s, %s, %s, %s, %s, %s",
         plural(r.inputs.size(), "input", "inputs").c_str(),
         plural(r.lines, "line", "lines").c_str(), plural(d.hosts.size(), "host", "hosts").c_str(),
         plural(d.processes.size(), "process", "processes").c_str(),
         plural(d.connections, "connection", "connections").c_str(),
         plural(d.resets, "reset", "resets").c_str(),
         plural(d.timeouts, "timeout", "timeouts").c_str());

    findings_text(r, bound, out);
    process_groups(d, out);
    histogram_text(d.histogram, out);
    pairs_text(d, bound, out);
    hosts_text(d, out);
    input_text(r, out);
}

} // namespace rstwatch
