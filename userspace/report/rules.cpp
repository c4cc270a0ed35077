#include "report/rules.hpp"

#include <algorithm>
#include <tuple>
#include <cctype>
#include <cstdio>

namespace rstwatch {

std::string_view to_string(FindingKind k) {
    switch (k) {
    case FindingKind::middlebox_idle_timeout:
        return "middlebox_idle_timeout";
    case FindingKind::deaths_not_clustered:
        return "deaths_not_clustered";
    case FindingKind::one_side_keepalive:
        break;
    }
    return "one_side_keepalive";
}

std::string human_ms(std::uint64_t ms) {
    char buf[48];
    if (ms < 1000) {
        std::snprintf(buf, sizeof buf, "%llums", (unsigned long long)ms);
    } else if (ms < 10'000) {
        std::snprintf(buf, sizeof buf, "%.1fs", double(ms / 100) / 10.0);
    } else if (ms < 100'000) {
        std::snprintf(buf, sizeof buf, "%llus", (unsigned long long)(ms / 1000));
    } else if (ms < 3'600'000) {
        unsigned long long s = ms / 1000;
        if (s % 60)
            std::snprintf(buf, sizeof buf, "%llum%llus", s / 60, s % 60);
        else
            std::snprintf(buf, sizeof buf, "%llum", s / 60);
    } else if (ms < 172'800'000) {
        unsigned long long m = ms / 60'000;
        if (m % 60)
            std::snprintf(buf, sizeof buf, "%lluh%llum", m / 60, m % 60);
        else
            std::snprintf(buf, sizeof buf, "%lluh", m / 60);
    } else {
        std::snprintf(buf, sizeof buf, "%llud", (unsigned long long)(ms / 86'400'000));
    }
    return buf;
}

ClusterResult evaluate_cluster(const MiddleboxDeaths &mb) {
    ClusterResult r;
    r.deaths = mb.known_idle;
    r.at_or_above = mb.at_or_above_floor;
    r.below_floor = mb.below_floor;
    if (r.deaths == 0) return r;
    r.fraction = double(r.at_or_above) / double(r.deaths);
    if (r.at_or_above) r.bound_ms = mb.min_idle_ms;
    // Integer form of at_or_above / deaths >= 0.8, exact at the boundary.
    r.clustered = r.at_or_above > 0 && r.at_or_above * 5 >= r.deaths * 4;
    return r;
}

namespace {

// Idle and interval for `fraction` of a timeout `ref_ms`. A lost first probe
// is retried after idle + interval: that must still come before 90 % of the
// timeout, which matters when rounding to whole seconds on short timeouts.
std::pair<std::uint32_t, std::uint32_t> fit(double fraction, std::uint64_t ref_ms) {
    auto k = std::uint32_t(std::max<double>(1, double(ref_ms) * fraction / 1000.0));
    std::uint32_t i = std::max<std::uint32_t>(1, k / 10);
    while (k > 1 && std::uint64_t(k + i) * 1000 > ref_ms * 9 / 10) {
        --k;
        i = std::max<std::uint32_t>(1, k / 10);
    }
    return {k, i};
}

} // namespace

KeepaliveAdvice recommend_keepalive(std::uint64_t bound_ms,
                                    std::optional<std::chrono::milliseconds> configured) {
    KeepaliveAdvice a;
    char buf[256];
    if (configured && std::uint64_t(configured->count()) <= bound_ms) {
        std::tie(a.idle_s, a.interval_s) = fit(0.8, std::uint64_t(configured->count()));
        std::snprintf(buf, sizeof buf, "80%% of the configured middlebox timeout (%s)",
                      human_ms(std::uint64_t(configured->count())).c_str());
        a.basis = buf;
    } else {
        std::tie(a.idle_s, a.interval_s) = fit(0.5, bound_ms);
        std::snprintf(buf, sizeof buf,
                      "half the inferred bound (%s): the bound overestimates the timeout by "
                      "however long a flow stayed silent after its eviction",
                      human_ms(bound_ms).c_str());
        a.basis = buf;
        auto presets = presets_consistent_with(std::chrono::milliseconds(bound_ms));
        if (!presets.empty()) {
            const MiddleboxPreset &shortest = presets.back(); // sorted longest first
            auto [k, i] = fit(0.8, std::uint64_t(shortest.timeout.count()) * 1000);
            if (k < a.idle_s) {
                a.idle_s = k;
                a.interval_s = i;
                std::snprintf(buf, sizeof buf,
                              "80%% of %s (%llds), the shortest named middlebox timeout the "
                              "bound (%s) does not rule out",
                              std::string(shortest.name).c_str(),
                              (long long)shortest.timeout.count(), human_ms(bound_ms).c_str());
                a.basis = buf;
            }
        }
    }
    a.probes = kAdvisedProbes;
    return a;
}

std::vector<FixCommand> sysctl_commands(const KeepaliveAdvice &a) {
    const std::string k = std::to_string(a.idle_s), i = std::to_string(a.interval_s),
                      p = std::to_string(a.probes);
    std::vector<FixCommand> out;
    out.push_back({"apply now, as root on each affected host (per network namespace: "
                   "containers need it in theirs, see the per-process commands)",
                   "sysctl -w net.ipv4.tcp_keepalive_time=" + k + " net.ipv4.tcp_keepalive_intvl=" +
                       i + " net.ipv4.tcp_keepalive_probes=" + p});
    out.push_back({"persist across reboots (files in /etc/sysctl.d are applied in name "
                   "order at boot; 90- sorts after distribution defaults)",
                   "printf 'net.ipv4.tcp_keepalive_time = " + k +
                       "\\nnet.ipv4.tcp_keepalive_intvl = " + i +
                       "\\nnet.ipv4.tcp_keepalive_probes = " + p +
                       "\\n' > /etc/sysctl.d/90-tcp-keepalive.conf && sysctl -p "
                       "/etc/sysctl.d/90-tcp-keepalive.conf"});
    out.push_back({"the sysctls only tune sockets that enabled SO_KEEPALIVE: in the "
                   "application, for every long-lived connection",
                   setsockopt_snippet(a)});
    return out;
}

std::string setsockopt_snippet(const KeepaliveAdvice &a) {
    return "int on = 1, idle = " + std::to_string(a.idle_s) +
           ", intvl = " + std::to_string(a.interval_s) + ", cnt = " + std::to_string(a.probes) +
           "; setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on); "
           "setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle); "
           "setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl); "
           "setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);";
}

namespace {

std::string shell_quote(std::string_view s) {
    bool plain = !s.empty();
    for (char c : s)
        plain = plain && (std::isalnum(static_cast<unsigned char>(c)) ||
                          std::string_view("/._-:@+=,").find(c) != std::string_view::npos);
    if (plain) return std::string(s);
    std::string q = "'";
    for (char c : s) {
        if (c == '\'')
            q += "'\\''";
        else
            q += c;
    }
    return q + "'";
}

} // namespace

std::string enforce_command(std::string_view cgroup, std::uint32_t pid, const KeepaliveAdvice &a) {
    std::string cg = !cgroup.empty()
                         ? shell_quote(cgroup)
                         : "\"$(sed -n 's/^0:://p' /proc/" + std::to_string(pid) + "/cgroup)\"";
    return "rstwatch enforce --cgroup " + cg + " --idle " + std::to_string(a.idle_s) + "s";
}

std::vector<Finding> build_findings(const ReportData &d,
                                    std::optional<std::chrono::milliseconds> configured) {
    std::vector<Finding> out;
    const ClusterResult c = evaluate_cluster(d.middlebox);
    if (c.deaths > 0) {
        Finding f;
        f.cluster = c;
        f.inferred = d.middlebox.inferred;
        if (configured) f.configured_ms = std::uint64_t(configured->count());
        for (std::uint32_t h : d.hosts_order)
            if (d.hosts[h].mb_deaths) f.hosts.push_back(h);
        char buf[512];
        if (!c.clustered) {
            f.kind = FindingKind::deaths_not_clustered;
            std::snprintf(buf, sizeof buf,
                          "%llu middlebox-caused deaths, but only %.0f%% of them were idle for "
                          "at least %s: the middlebox also kills connections that are not idle "
                          "(policy resets, failover, a full state table), so these deaths do not "
                          "reveal an idle timeout.",
                          (unsigned long long)c.deaths, c.fraction * 100,
                          human_ms(kClusterFloorMs).c_str());
            f.summary = buf;
        } else {
            f.kind = FindingKind::middlebox_idle_timeout;
            f.presets = presets_consistent_with(std::chrono::milliseconds(c.bound_ms));
            if (configured)
                f.consistent_with_configured = std::uint64_t(configured->count()) <= c.bound_ms;
            f.advice = recommend_keepalive(c.bound_ms, configured);
            std::snprintf(buf, sizeof buf,
                          "The middlebox idle timeout is at most %s: %llu of %llu "
                          "middlebox-caused deaths came after an idle period of at least %s. "
                          "Configure keepalive idle %us (interval %us, %u probes): %s.",
                          human_ms(c.bound_ms).c_str(), (unsigned long long)c.at_or_above,
                          (unsigned long long)c.deaths, human_ms(c.bound_ms).c_str(),
                          f.advice.idle_s, f.advice.interval_s, f.advice.probes,
                          f.advice.basis.c_str());
            f.summary = buf;
            if (f.consistent_with_configured == false)
                f.summary += " The configured timeout (" + human_ms(*f.configured_ms) +
                             ") is longer than the bound: another middlebox on the path has a "
                             "shorter one, or it was changed.";
            f.commands = sysctl_commands(f.advice);
            for (std::uint32_t pi : d.worst_first) {
                const ProcessReport &p = d.processes[pi];
                if (!p.mb_deaths) continue;
                if (f.affected.size() == kMaxAffected) {
                    ++f.affected_omitted;
                    continue;
                }
                AffectedProcess a;
                a.proc = pi;
                a.deaths = p.mb_deaths;
                const std::string host = d.hosts[p.host].name;
                if (!p.owned) {
                    a.keepalive = "unknown";
                    a.fix_what = "resets on " + host + " whose socket owner is unknown";
                    a.fix_command = "";
                } else if (p.mb_ka_off) {
                    a.keepalive = "disabled";
                    a.fix_what = "on " + host + ": " + p.comm + " (pid " + std::to_string(p.pid) +
                                 ") never enabled SO_KEEPALIVE; without changing its code:";
                    a.fix_command = enforce_command(p.cgroup, p.pid, f.advice);
                } else if (p.mb_ka_on) {
                    a.keepalive = "too_slow";
                    if (p.ka_idle_from_socket) {
                        a.fix_what = "on " + host + ": " + p.comm + " (pid " +
                                     std::to_string(p.pid) + ") sets TCP_KEEPIDLE itself (" +
                                     std::to_string(p.mb_max_ka_idle_s) + "s): lower it to " +
                                     std::to_string(f.advice.idle_s) + "s, or override:";
                        a.fix_command = enforce_command(p.cgroup, p.pid, f.advice);
                    } else {
                        a.fix_what = "on " + host + ": " + p.comm + " (pid " +
                                     std::to_string(p.pid) + ") uses the sysctl keepalive (" +
                                     std::to_string(p.mb_max_ka_idle_s) +
                                     "s); set it in the process's network namespace:";
                        a.fix_command =
                            "nsenter --target " + std::to_string(p.pid) +
                            " --net sysctl -w net.ipv4.tcp_keepalive_time=" +
                            std::to_string(f.advice.idle_s) +
                            " net.ipv4.tcp_keepalive_intvl=" + std::to_string(f.advice.interval_s) +
                            " net.ipv4.tcp_keepalive_probes=" + std::to_string(f.advice.probes);
                    }
                } else {
                    a.keepalive = "unknown";
                    a.fix_what = "on " + host + ": " + p.comm + " (pid " + std::to_string(p.pid) +
                                 "), keepalive state not recorded; to enforce it:";
                    a.fix_command = enforce_command(p.cgroup, p.pid, f.advice);
                }
                f.affected.push_back(std::move(a));
            }
        }
        out.push_back(std::move(f));
    }
    if (d.pair_counts.one_side > 0) {
        Finding f;
        f.kind = FindingKind::one_side_keepalive;
        f.pairs = d.pair_counts.one_side;
        for (std::size_t i = 0; i < d.pairs.size() && f.examples.size() < kMaxPairExamples; ++i)
            if (d.pairs[i].status == PairStatus::one_side) f.examples.push_back(i);
        f.summary = std::to_string(f.pairs) +
                    " connection(s) had keepalive on one end only. The probing end keeps the "
                    "middlebox entry alive only while its idle is below the timeout, the other "
                    "end never notices a vanished peer (half-open), and the protection goes with "
                    "the next redeploy of the fixed side: enable keepalive on both ends.";
        out.push_back(std::move(f));
    }
    return out;
}

} // namespace rstwatch
