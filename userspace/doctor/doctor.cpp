#include "doctor/doctor.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "util/clock.hpp"
#include "util/json_writer.hpp"
#include "util/middlebox.hpp"
#include "util/units.hpp"

namespace rstwatch::doctor {

namespace fs = std::filesystem;
using std::chrono::seconds;

constexpr std::string_view kCloud = "cloud-default";

std::string_view to_string(Status s) {
    switch (s) {
    case Status::ok:
        return "ok";
    case Status::warn:
        return "warn";
    case Status::fail:
        break;
    }
    return "fail";
}

// ---- parsing ----

namespace {

std::string_view trim(std::string_view s) {
    const char *ws = " \t\r\n";
    auto b = s.find_first_not_of(ws);
    if (b == std::string_view::npos) return {};
    auto e = s.find_last_not_of(ws);
    return s.substr(b, e - b + 1);
}

// Reads a small text file; empty when missing or unreadable.
std::optional<std::string> read_file(const fs::path &p, std::size_t limit = 1 << 20) {
    std::ifstream in(p, std::ios::binary);
    if (!in) return std::nullopt;
    std::string data(limit, '\0');
    in.read(data.data(), std::streamsize(limit));
    data.resize(std::size_t(in.gcount()));
    return data;
}

std::optional<std::int64_t> to_int(std::string_view s) {
    s = trim(s);
    std::int64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
    return v;
}

// root + an absolute system path.
fs::path under(const std::string &root, std::string_view path) {
    if (root.empty() || root == "/") return fs::path(path);
    return fs::path(root) / fs::path(path).relative_path();
}

} // namespace

std::string normalize_sysctl_key(std::string_view key) {
    std::string k(trim(key));
    auto slash = k.find('/'), dot = k.find('.');
    if (slash != std::string::npos && (dot == std::string::npos || slash < dot)) {
        // '/' separates; a '.' inside a component (an interface name) stays,
        // written the way sysctl(8) prints it: as '/'.
        for (char &c : k)
            c = c == '/' ? '.' : (c == '.' ? '/' : c);
    }
    return k;
}

std::vector<SysctlSetting> parse_sysctl_conf(std::string_view text, const std::string &file) {
    std::vector<SysctlSetting> out;
    int lineno = 0;
    std::size_t pos = 0;
    while (pos <= text.size()) {
        auto nl = text.find('\n', pos);
        if (nl == std::string_view::npos) nl = text.size();
        std::string_view line = trim(text.substr(pos, nl - pos));
        pos = nl + 1;
        ++lineno;
        if (line.empty() || line[0] == '#' || line[0] == ';') continue;
        if (line[0] == '-') line = trim(line.substr(1));
        auto eq = line.find('=');
        if (eq == std::string_view::npos) continue;
        std::string key = normalize_sysctl_key(line.substr(0, eq));
        if (key.empty()) continue;
        out.push_back(SysctlSetting{key, std::string(trim(line.substr(eq + 1))), file, lineno});
        if (nl == text.size()) break;
    }
    return out;
}

std::map<std::string, SysctlSetting> persisted_sysctls(const std::string &root) {
    static constexpr std::array<std::string_view, 5> dirs = {"/etc/sysctl.d", "/run/sysctl.d",
                                                             "/usr/local/lib/sysctl.d",
                                                             "/usr/lib/sysctl.d", "/lib/sysctl.d"};
    // File name -> the path that wins for it (earlier directories mask later).
    std::map<std::string, std::string> chosen;
    for (auto dir : dirs) {
        std::error_code ec;
        for (fs::directory_iterator it(under(root, dir), ec), end; !ec && it != end;
             it.increment(ec)) {
            std::string name = it->path().filename().string();
            if (name.size() < 6 || name.substr(name.size() - 5) != ".conf") continue;
            chosen.emplace(name, std::string(dir) + "/" + name);
        }
    }
    std::vector<std::string> order;
    for (auto &[name, path] : chosen)
        order.push_back(path);
    order.emplace_back("/etc/sysctl.conf");

    std::map<std::string, SysctlSetting> out;
    for (const auto &path : order) {
        fs::path p = under(root, path);
        std::error_code ec;
        // Absolute symlinks point into the system being checked, not ours.
        if (fs::is_symlink(p, ec)) {
            fs::path target = fs::read_symlink(p, ec);
            if (!ec && target == "/dev/null") continue;
            if (!ec && target.is_absolute()) p = under(root, target.string());
        }
        auto text = read_file(p);
        if (!text) continue;
        for (auto &s : parse_sysctl_conf(*text, path))
            out[s.key] = s;
    }
    return out;
}

std::optional<std::int64_t> read_sysctl_int(const std::string &root, std::string_view key) {
    std::string rel(key);
    for (char &c : rel)
        if (c == '.') c = '/';
    auto text = read_file(under(root, "/proc/sys/" + rel), 4096);
    if (!text) return std::nullopt;
    return to_int(*text);
}

NetnsFacts read_netns_facts(const std::string &root) {
    NetnsFacts f;
    f.keepalive_time = read_sysctl_int(root, "net.ipv4.tcp_keepalive_time");
    f.keepalive_intvl = read_sysctl_int(root, "net.ipv4.tcp_keepalive_intvl");
    f.keepalive_probes = read_sysctl_int(root, "net.ipv4.tcp_keepalive_probes");
    f.ct_established = read_sysctl_int(root, "net.netfilter.nf_conntrack_tcp_timeout_established");
    f.conntrack_loaded = f.ct_established.has_value();
    f.ct_count = read_sysctl_int(root, "net.netfilter.nf_conntrack_count");
    f.ct_max = read_sysctl_int(root, "net.netfilter.nf_conntrack_max");
    return f;
}

// ---- judging ----

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

namespace {

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
                      "pass --middlebox-timeout to check against yours";
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
        if (it != persisted.end()) pv = to_int(it->second.value);
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

Check connections_check(const AuditResult &audit, const std::optional<TimeoutBound> &bound,
                        const NetnsFacts &f, const Context &ctx) {
    Check c;
    c.id = "keepalive_off_connections";
    std::uint64_t total = 0, off = 0, expired = 0, exposed = 0;
    for (const auto &p : audit.processes) {
        ProcessConnections pc;
        pc.pid = p.pid;
        pc.comm = p.comm;
        pc.connections = p.sockets;
        pc.without_keepalive = p.without_keepalive;
        if (p.risk_counts) {
            pc.expired = (*p.risk_counts)[int(Risk::expired)];
            pc.exposed = (*p.risk_counts)[int(Risk::exposed)];
        }
        total += pc.connections;
        off += pc.without_keepalive;
        expired += pc.expired;
        exposed += pc.exposed;
        if (pc.without_keepalive || pc.expired || pc.exposed) c.processes.push_back(pc);
    }
    std::stable_sort(c.processes.begin(), c.processes.end(), [](const auto &a, const auto &b) {
        if (a.expired != b.expired) return a.expired > b.expired;
        return a.without_keepalive > b.without_keepalive;
    });
    constexpr std::size_t kMaxProcesses = 20;
    std::string names;
    for (std::size_t i = 0; i < c.processes.size() && i < 5; ++i)
        names += (i ? ", " : "") + c.processes[i].comm + " (pid " +
                 std::to_string(c.processes[i].pid) + ") " +
                 std::to_string(c.processes[i].without_keepalive);
    if (c.processes.size() > 5) names += ", ...";
    if (c.processes.size() > kMaxProcesses) c.processes.resize(kMaxProcesses);

    c.observed = std::to_string(off) + " of " + std::to_string(total) +
                 " connections have keepalive off" + (names.empty() ? "" : ": " + names);
    Recommendation rec = recommend(f, check_target(bound, ctx));
    const std::string fix =
        "enable SO_KEEPALIVE in these applications: setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, "
        "1) and setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, " +
        std::to_string(rec.time_s) +
        ") (or the language's option, e.g. Java Socket.setKeepAlive(true), Go "
        "net.Dialer{KeepAlive}, libpq keepalives=1)";
    if (bound) {
        c.observed += "; against " + bound_text(*bound) + ": " + std::to_string(expired) +
                      " expired, " + std::to_string(exposed) + " exposed";
        c.expected = "every connection protected: keepalive on with an idle time below " +
                     secs_text(bound->value.count());
        if (expired) {
            c.status = Status::fail;
            c.observed += " (expired: idle longer than the timeout, the next write fails)";
        } else if (exposed) {
            c.status = Status::warn;
        }
    } else {
        c.expected = "keepalive on for long-lived connections that may idle behind a "
                     "firewall or NAT";
        if (off) c.status = Status::warn;
    }
    if (c.status != Status::ok) c.fix = fix;
    return c;
}

Check connections_skipped(const std::string &why) {
    Check c;
    c.id = "keepalive_off_connections";
    c.status = Status::warn;
    c.skipped = true;
    c.observed = "skipped: " + why;
    c.expected = "the current connections and their keepalive state (BPF socket iterator)";
    c.fix = "run as root (CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN): sudo rstwatch doctor";
    return c;
}

int exit_code(const std::vector<Check> &checks) {
    for (const auto &c : checks)
        if (c.status == Status::fail) return 1;
    return 0;
}

// ---- output ----

void append_json(std::string &out, const Check &c, const Scope &scope, std::int64_t ts_ns,
                 const std::string &host) {
    JsonWriter w(out);
    w.begin_object();
    w.field_num("v", 1).field("event", "doctor_check");
    std::string ts;
    Rfc3339().append(ts, ts_ns);
    w.field("ts", ts).field("host", host);
    w.field("check", c.id).field("status", to_string(c.status));
    w.field("observed", c.observed).field("expected", c.expected);
    if (c.fix.empty())
        w.field_null("fix");
    else
        w.field("fix", c.fix);
    w.field_unum("netns", scope.netns);
    if (scope.netns_name.empty())
        w.field_null("netns_name");
    else
        w.field("netns_name", scope.netns_name);
    w.field_bool("skipped", c.skipped);
    if (c.id == "keepalive_off_connections" && !c.skipped) {
        w.key("processes").begin_array();
        for (const auto &p : c.processes) {
            w.begin_object();
            w.field_unum("pid", p.pid).field("comm", p.comm);
            w.field_unum("connections", p.connections);
            w.field_unum("without_keepalive", p.without_keepalive);
            w.field_unum("expired", p.expired).field_unum("exposed", p.exposed);
            w.end_object();
        }
        w.end_array();
    } else {
        w.field_null("processes");
    }
    w.end_object();
    out.push_back('\n');
}

void append_text(std::string &out, const std::vector<Check> &checks, const Scope &scope,
                 const std::string &host, bool color) {
    auto paint = [color](std::string_view code, std::string_view s) {
        if (!color) return std::string(s);
        return "\033[" + std::string(code) + "m" + std::string(s) + "\033[0m";
    };
    out += "rstwatch doctor: host " + host + ", network namespace " + std::to_string(scope.netns) +
           (scope.netns_name.empty() ? std::string() : " (" + scope.netns_name + ")") + "\n";
    int counts[3] = {0, 0, 0};
    for (const auto &c : checks) {
        ++counts[int(c.status)];
        std::string tag;
        switch (c.status) {
        case Status::ok:
            tag = paint("32", "OK  ");
            break;
        case Status::warn:
            tag = paint("33", "WARN");
            break;
        case Status::fail:
            tag = paint("1;31", "FAIL");
            break;
        }
        out += "  " + tag + "  " + c.id + ": " + c.observed + "\n";
        if (c.status == Status::ok) continue;
        out += "        expected: " + c.expected + "\n";
        for (const auto &p : c.processes)
            out += "        - " + p.comm + " (pid " + std::to_string(p.pid) +
                   "): " + std::to_string(p.without_keepalive) + " of " +
                   std::to_string(p.connections) + " without keepalive" +
                   (p.expired ? ", " + std::to_string(p.expired) + " expired" : std::string()) +
                   "\n";
        if (!c.fix.empty()) {
            out += "        fix:\n";
            std::istringstream lines(c.fix);
            std::string line;
            while (std::getline(lines, line))
                out += "          " + line + "\n";
        }
    }
    out += "  " + std::to_string(counts[2]) + " fail, " + std::to_string(counts[1]) + " warn, " +
           std::to_string(counts[0]) + " ok\n";
}

} // namespace rstwatch::doctor
