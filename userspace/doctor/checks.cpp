// doctor, judging the sysctls: the facts read against the middlebox timeout,
// each check with what was seen, what is expected and the commands that fix it.
// The connections check is in connections.cpp.
#include "doctor/doctor.hpp"
#include "doctor/wording.hpp"

#include <algorithm>
#include <array>

#include "util/middlebox.hpp"
#include "util/units.hpp"

namespace rstwatch::doctor {

using std::chrono::seconds;

constexpr std::string_view kCloud = "cloud-default";

std::chrono::seconds shortest_cloud_timeout() {
    seconds best = seconds::max();
    for (const auto &p : middlebox_presets())
        best = std::min(best, p.timeout);
    return best;
}

std::optional<TimeoutBound> timeout_bound(const NetnsFacts &f, const Context &ctx) {
    std::optional<TimeoutBound> b;
    if (ctx.middlebox_timeout) {
        auto s = std::chrono::duration_cast<seconds>(*ctx.middlebox_timeout);
        if (s.count() < 1) s = seconds(1);
        b = TimeoutBound{s, "--middlebox-timeout"};
    }
    if (f.conntrack_loaded && f.ct_established && *f.ct_established > 0 &&
        (!b || seconds(*f.ct_established) < b->value))
        b = TimeoutBound{seconds(*f.ct_established), "nf_conntrack_tcp_timeout_established"};
    return b;
}

TimeoutBound check_target(const std::optional<TimeoutBound> &bound, const Context &ctx) {
    const seconds cloud = shortest_cloud_timeout();
    // Without --middlebox-timeout the firewalls beyond this host are unknown:
    // hold keepalive to the shortest common cloud default as well.
    if (!ctx.middlebox_timeout && (!bound || cloud < bound->value))
        return TimeoutBound{cloud, std::string(kCloud)};
    return *bound;
}

Recommendation recommend(const NetnsFacts &f, const TimeoutBound &target) {
    Recommendation r{};
    const std::int64_t intvl = f.keepalive_intvl.value_or(75);
    r.probes = f.keepalive_probes.value_or(9);
    // Half the timeout; the first probe may leave up to 1/8 late (timer wheel),
    // and the retry of a lost probe must still arrive in time:
    // time * 9/8 + intvl < T holds for intvl <= 7/16 T.
    const std::int64_t t = target.value.count();
    r.time_s = std::max<std::int64_t>(1, t / 2);
    r.intvl_s = std::max<std::int64_t>(1, std::min<std::int64_t>(intvl, t * 7 / 16));
    return r;
}

std::string secs_text(std::int64_t s) {
    std::string t = std::to_string(s) + " s";
    if (s >= 120) t += " (" + format_duration(std::chrono::milliseconds(s * 1000)) + ")";
    return t;
}

std::string bound_text(const TimeoutBound &b) {
    if (b.source == "--middlebox-timeout")
        return "the middlebox idle timeout " + secs_text(b.value.count()) +
               " (--middlebox-timeout)";
    return "this namespace's conntrack established timeout " + secs_text(b.value.count()) +
           " (net.netfilter.nf_conntrack_tcp_timeout_established)";
}

namespace {

// How to run a command in the checked namespace.
std::string in_netns(const Context &ctx, const std::string &cmd) {
    if (ctx.host_netns) return cmd;
    if (!ctx.netns_name.empty()) return "ip netns exec " + ctx.netns_name + " " + cmd;
    if (ctx.holder_pid)
        return "nsenter --net=/proc/" + std::to_string(ctx.holder_pid) + "/ns/net " + cmd;
    return cmd + "   # inside network namespace " + std::to_string(ctx.netns);
}

constexpr const char *kPersistFile = "/etc/sysctl.d/99-rstwatch-keepalive.conf";

// Commands that make key = value survive a reboot: edit the admin file that
// sets the key today, else add it to a file of ours (sorted after the usual
// ones; /etc/sysctl.conf, read last, is edited in place when it sets the key).
std::string persist_commands(const std::vector<std::pair<std::string, std::int64_t>> &kv,
                             const std::map<std::string, SysctlSetting> &persisted) {
    std::string out;
    for (auto &[k, v] : kv) {
        auto it = persisted.find(k);
        std::string line = k + " = " + std::to_string(v);
        if (!out.empty()) out += "\n";
        if (it != persisted.end() && it->second.file.rfind("/etc/", 0) == 0) {
            std::string esc;
            for (char c : k)
                esc += c == '.' ? std::string("[./]") : std::string(1, c);
            out += "sed -i 's|^[[:space:]]*-\\?" + esc + "[[:space:]]*=.*|" + line + "|' " +
                   it->second.file;
        } else {
            out += "echo '" + line + "' >> " + kPersistFile;
        }
    }
    return out;
}

// Commands that set keys at runtime and make them survive a reboot.
std::string sysctl_fix(const std::vector<std::pair<std::string, std::int64_t>> &kv,
                       const std::map<std::string, SysctlSetting> &persisted, const Context &ctx) {
    if (kv.empty()) return {};
    std::string set = "sysctl -w";
    for (auto &[k, v] : kv)
        set += " " + k + "=" + std::to_string(v);
    std::string fix = in_netns(ctx, set);
    if (!ctx.host_netns) {
        fix += "\n# /etc/sysctl.d applies only to the host namespace: set these where this "
               "namespace is created (container runtime sysctls, e.g. `docker run --sysctl "
               "KEY=VALUE` or a Kubernetes pod's securityContext.sysctls)";
        return fix;
    }
    return fix + "\n" + persist_commands(kv, persisted);
}

// A keepalive sysctl this namespace does not let us read: a warning, not a verdict.
Check unreadable_sysctl(Check c) {
    c.status = Status::warn;
    c.observed = "net.ipv4." + c.id + " is not readable here";
    c.expected = "a readable /proc/sys/net/ipv4/" + c.id;
    return c;
}

Check keepalive_time_check(const NetnsFacts &f, const std::optional<TimeoutBound> &bound,
                           const TimeoutBound &target, const Recommendation &rec,
                           const std::map<std::string, SysctlSetting> &persisted,
                           const Context &ctx) {
    Check c;
    c.id = "tcp_keepalive_time";
    if (!f.keepalive_time) return unreadable_sysctl(std::move(c));
    const std::int64_t k = *f.keepalive_time;
    c.observed = "net.ipv4.tcp_keepalive_time = " + secs_text(k);
    std::vector<std::pair<std::string, std::int64_t>> kv = {
        {"net.ipv4.tcp_keepalive_time", rec.time_s}};
    if (f.keepalive_intvl && *f.keepalive_intvl > rec.intvl_s)
        kv.emplace_back("net.ipv4.tcp_keepalive_intvl", rec.intvl_s);
    const std::string so_keepalive =
        "\n# the sysctls only apply to sockets with SO_KEEPALIVE on: enable it in the "
        "application (setsockopt SO_KEEPALIVE=1, or TCP_KEEPIDLE per socket); `rstwatch audit` "
        "lists the connections without it";
    if (bound) c.observed += "; " + bound_text(*bound);
    c.expected = "shorter than " + secs_text(target.value.count()) +
                 ", so that a probe refreshes the middlebox state before it expires (e.g. " +
                 std::to_string(rec.time_s) + " s)";
    if (target.source == kCloud)
        c.expected += "; " + secs_text(target.value.count()) +
                      " is the shortest common cloud firewall/NAT default (docs/middleboxes.md): "
                      "pass --middlebox-timeout to check against yours, or measure it with "
                      "`rstwatch probe HOST:PORT` (docs/probe.md)";
    if (bound && k >= bound->value.count()) {
        c.status = Status::fail;
        c.observed += ": idle connections are forgotten before the first keepalive probe";
        c.fix = sysctl_fix(kv, persisted, ctx) + so_keepalive;
    } else if (k >= target.value.count()) {
        c.status = Status::warn;
        c.observed += "; not shorter than " + secs_text(target.value.count()) +
                      ", the Azure Load Balancer / NAT Gateway default idle timeout";
        c.fix = sysctl_fix(kv, persisted, ctx) + so_keepalive;
    }
    return c;
}

Check keepalive_intvl_check(const NetnsFacts &f, const TimeoutBound &target,
                            const Recommendation &rec,
                            const std::map<std::string, SysctlSetting> &persisted,
                            const Context &ctx) {
    Check c;
    c.id = "tcp_keepalive_intvl";
    if (!f.keepalive_intvl) return unreadable_sysctl(std::move(c));
    const std::int64_t i = *f.keepalive_intvl;
    c.observed = "net.ipv4.tcp_keepalive_intvl = " + secs_text(i);
    if (!f.keepalive_time) {
        c.expected = "tcp_keepalive_time + tcp_keepalive_intvl below the middlebox timeout";
        return c;
    }
    const std::int64_t t = target.value.count(), k = *f.keepalive_time;
    c.expected = "tcp_keepalive_time + tcp_keepalive_intvl shorter than " + secs_text(t) +
                 ", so that the retry of a lost probe still finds the middlebox state";
    if (k < t && k + i >= t) {
        c.status = Status::warn;
        c.observed += "; with tcp_keepalive_time " + std::to_string(k) +
                      " s one lost probe lets the middlebox state (" + secs_text(t) + ") expire";
        c.fix = sysctl_fix({{"net.ipv4.tcp_keepalive_time", std::min(k, rec.time_s)},
                            {"net.ipv4.tcp_keepalive_intvl", rec.intvl_s}},
                           persisted, ctx);
    }
    return c;
}

Check keepalive_probes_check(const NetnsFacts &f,
                             const std::map<std::string, SysctlSetting> &persisted,
                             const Context &ctx) {
    Check c;
    c.id = "tcp_keepalive_probes";
    if (!f.keepalive_probes) return unreadable_sysctl(std::move(c));
    c.observed = "net.ipv4.tcp_keepalive_probes = " + std::to_string(*f.keepalive_probes);
    c.expected = "at least 3, so that a few lost probes do not abort a healthy connection";
    if (*f.keepalive_probes < 3) {
        c.status = Status::warn;
        c.fix = sysctl_fix({{"net.ipv4.tcp_keepalive_probes", 3}}, persisted, ctx);
    }
    return c;
}

Check conntrack_timeout_check(const NetnsFacts &f, const Context &ctx) {
    Check c;
    c.id = "conntrack_tcp_timeout_established";
    if (!f.conntrack_loaded) {
        c.observed = "netfilter conntrack is not loaded (no net.netfilter.nf_conntrack_* here)";
        c.expected = "nothing to check without conntrack";
        return c;
    }
    const std::int64_t t = f.ct_established.value_or(0);
    c.observed = "net.netfilter.nf_conntrack_tcp_timeout_established = " + secs_text(t);
    // Connections forwarded or NATed by this host belong to other hosts, most
    // with the Linux default keepalive time: the state must outlive it.
    constexpr std::int64_t kDefaultKeepalive = 7200;
    c.expected = "longer than the keepalive time of the endpoints whose connections it tracks "
                 "(Linux default " +
                 secs_text(kDefaultKeepalive) + ")";
    if (t < kDefaultKeepalive) {
        c.status = Status::warn;
        c.observed += ": idle connections of endpoints with default keepalive settings are "
                      "forgotten";
        std::string set = "sysctl -w net.netfilter.nf_conntrack_tcp_timeout_established=" +
                          std::to_string(kDefaultKeepalive + 600);
        c.fix = in_netns(ctx, set);
        if (ctx.host_netns)
            c.fix += "\necho 'net.netfilter.nf_conntrack_tcp_timeout_established = " +
                     std::to_string(kDefaultKeepalive + 600) + "' >> " + kPersistFile;
        c.fix += "\n# or keep the short timeout and make every endpoint probe below it "
                 "(tcp_keepalive_time, SO_KEEPALIVE)";
    }
    return c;
}

Check conntrack_table_check(const NetnsFacts &f, const Context &ctx) {
    Check c;
    c.id = "conntrack_table";
    if (!f.conntrack_loaded || !f.ct_count || !f.ct_max || *f.ct_max <= 0) {
        c.observed = f.conntrack_loaded ? "nf_conntrack_count / nf_conntrack_max not readable"
                                        : "netfilter conntrack is not loaded";
        c.expected = "nothing to check without conntrack";
        return c;
    }
    const std::int64_t n = *f.ct_count, max = *f.ct_max;
    const std::int64_t pct = n * 100 / max;
    c.observed = "nf_conntrack_count " + std::to_string(n) + " of nf_conntrack_max " +
                 std::to_string(max) + " (" + std::to_string(pct) + "%)";
    c.expected = "below 80% full: a full table drops new connections";
    if (pct >= 80) {
        c.status = pct >= 95 ? Status::fail : Status::warn;
        // nf_conntrack_max is global: set from the host namespace.
        std::string v = std::to_string(max * 2);
        c.fix = "sysctl -w net.netfilter.nf_conntrack_max=" + v +
                "\necho 'net.netfilter.nf_conntrack_max = " + v + "' >> " + kPersistFile;
        if (!ctx.host_netns) c.fix += "\n# nf_conntrack_max is global: run these on the host";
    }
    return c;
}

Check persistence_check(const NetnsFacts &f, const std::map<std::string, SysctlSetting> &persisted,
                        const Context &ctx) {
    Check c;
    c.id = "keepalive_sysctls_persisted";
    struct Key {
        const char *name;
        std::optional<std::int64_t> runtime;
        std::int64_t kernel_default;
    };
    const Key keys[] = {{"net.ipv4.tcp_keepalive_time", f.keepalive_time, 7200},
                        {"net.ipv4.tcp_keepalive_intvl", f.keepalive_intvl, 75},
                        {"net.ipv4.tcp_keepalive_probes", f.keepalive_probes, 9}};
    std::vector<std::string> seen, problems;
    std::vector<std::pair<std::string, std::int64_t>> to_persist;
    bool not_applied = false;
    for (const auto &k : keys) {
        if (!k.runtime) continue;
        auto it = persisted.find(k.name);
        std::optional<std::int64_t> pv;
        if (it != persisted.end()) pv = sysctl_int(it->second.value);
        std::string where = it != persisted.end()
                                ? it->second.file + ":" + std::to_string(it->second.line)
                                : std::string();
        if (!ctx.host_netns) {
            if (*k.runtime != k.kernel_default)
                problems.push_back(std::string(k.name) + " = " + std::to_string(*k.runtime) +
                                   " set at runtime in this namespace");
            else
                seen.push_back(std::string(k.name) + " = " + std::to_string(*k.runtime) +
                               " (kernel default)");
            continue;
        }
        if (pv && *pv == *k.runtime) {
            seen.push_back(std::string(k.name) + " = " + std::to_string(*k.runtime) +
                           " persisted in " + where);
        } else if (pv) {
            problems.push_back(std::string(k.name) + " = " + std::to_string(*k.runtime) +
                               " at runtime but " + it->second.value + " in " + where);
            not_applied = true;
            to_persist.emplace_back(k.name, *k.runtime);
        } else if (*k.runtime != k.kernel_default) {
            problems.push_back(std::string(k.name) + " = " + std::to_string(*k.runtime) +
                               " set at runtime only (reverts to " +
                               std::to_string(k.kernel_default) + " at reboot)");
            to_persist.emplace_back(k.name, *k.runtime);
        } else {
            seen.push_back(std::string(k.name) + " = " + std::to_string(*k.runtime) +
                           " (kernel default, nothing to persist)");
        }
    }
    auto join = [](const std::vector<std::string> &v) {
        std::string s;
        for (auto &x : v)
            s += (s.empty() ? "" : "; ") + x;
        return s;
    };
    if (!ctx.host_netns) {
        c.expected = "values set where the namespace is created (/etc/sysctl.d applies only to "
                     "the host namespace)";
        c.observed = join(problems.empty() ? seen : problems);
        if (!problems.empty()) {
            c.status = Status::warn;
            c.fix = "# a namespace starts from the kernel defaults: make whatever creates it "
                    "(container runtime, CNI, `ip netns exec` script) set these sysctls";
        }
        return c;
    }
    c.expected = "runtime keepalive sysctls equal to what /etc/sysctl.conf and sysctl.d apply "
                 "at boot";
    if (problems.empty()) {
        c.observed = join(seen);
        return c;
    }
    c.status = Status::warn;
    c.observed = join(problems);
    // Keep the runtime values (the other checks judge whether they are good).
    std::string fix = persist_commands(to_persist, persisted);
    if (not_applied) fix += "\n# or, to apply the persisted values instead: sysctl --system";
    c.fix = fix;
    return c;
}

} // namespace

std::vector<Check> sysctl_checks(const NetnsFacts &f,
                                 const std::map<std::string, SysctlSetting> &persisted,
                                 const Context &ctx) {
    auto bound = timeout_bound(f, ctx);
    TimeoutBound target = check_target(bound, ctx);
    Recommendation rec = recommend(f, target);
    std::vector<Check> out;
    out.push_back(keepalive_time_check(f, bound, target, rec, persisted, ctx));
    out.push_back(keepalive_intvl_check(f, target, rec, persisted, ctx));
    out.push_back(keepalive_probes_check(f, persisted, ctx));
    out.push_back(conntrack_timeout_check(f, ctx));
    out.push_back(conntrack_table_check(f, ctx));
    out.push_back(persistence_check(f, persisted, ctx));
    return out;
}

} // namespace rstwatch::doctor
