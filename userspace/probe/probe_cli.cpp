// `rstwatch probe` command line: CLI11 registration and validation. Pure (no
// sockets): bad values are exit 2 with one line naming the flag and value.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <charconv>

#include "probe/probe_cli.hpp"
#include "probe/probe_policy.hpp"
#include "util/error.hpp"
#include "util/units.hpp"

namespace rstwatch {

namespace {

using std::chrono::milliseconds;

[[noreturn]] void bad(const std::string &flag, const std::string &value,
                      const std::string &expected) {
    std::string shown;
    for (unsigned char ch : value) {
        if (ch < 0x20 || ch == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", ch);
            shown += buf;
        } else {
            shown += char(ch);
        }
    }
    throw UsageError("invalid value '" + shown + "' for " + flag + ": expected " + expected);
}

// TCP_KEEPIDLE / TCP_KEEPINTVL take whole seconds, at most 32767.
milliseconds keepalive_seconds(const std::string &flag, const std::string &v, long long max_s) {
    auto d = parse_duration(v);
    if (!d || d->count() % 1000 != 0 || d->count() < 1000 || d->count() > max_s * 1000)
        bad(flag, v,
            "a whole number of seconds from 1s to " + std::to_string(max_s) +
                "s (keepalive times are whole seconds), such as 30s, 5m or 2h");
    return *d;
}

} // namespace

CLI::App *add_probe_subcommand(CLI::App &app, ProbeCliRaw &r) {
    auto *p = app.add_subcommand(
        "probe", "Measure the idle timeout of the firewall/NAT on the path to HOST:PORT with "
                 "payload-free keepalive probes (no privileges needed)");
    p->add_option("target", r.target, "HOST:PORT of a TCP service ([ADDR]:PORT for IPv6)");
    p->add_option("--connections", r.connections,
                  "Connections open at once, one idle time each (default 8, at most 64)");
    p->add_option("--precision", r.precision,
                  "Stop when the bracket is this narrow: a share of the lower bound (5%) or a "
                  "duration (10s); default 10%");
    p->add_option("--max-time", r.max_time, "Total time bound (default 3h)");
    p->add_option("--min", r.min, "Shortest idle time to try (default 10s)");
    p->add_option("--max", r.max, "Longest idle time to try (default 2h)");
    p->add_option("--ladder", r.ladder,
                  "Try exactly these idle times in one round instead of searching "
                  "(30s,60s,120s)");
    p->add_option("--interval", r.interval,
                  "TCP_KEEPINTVL: how long an unanswered probe waits before the connection "
                  "counts as dropped (default 1s)");
    p->add_option("--format", r.format, "Output format: json (NDJSON, default) or text");
    return p;
}

ProbeOptions finish_probe_options(const ProbeCliRaw &r) {
    ProbeOptions o;
    if (r.target.empty())
        throw UsageError("probe needs a target: rstwatch probe HOST:PORT (such as 10.0.0.5:5432)");
    o.target = r.target;
    if (r.format == "json")
        o.text = false;
    else if (r.format == "text")
        o.text = true;
    else
        bad("--format", r.format, "json or text");
    auto &p = o.policy;
    if (!r.connections.empty()) {
        unsigned n = 0;
        auto [end, ec] =
            std::from_chars(r.connections.data(), r.connections.data() + r.connections.size(), n);
        if (ec != std::errc() || end != r.connections.data() + r.connections.size() || n < 1 ||
            n > 64)
            bad("--connections", r.connections, "a number of connections (1..64)");
        p.connections = n;
    }
    if (!r.precision.empty()) {
        const std::string &v = r.precision;
        if (v.back() == '%') {
            double pct = 0;
            std::string num = v.substr(0, v.size() - 1);
            auto [end, ec] = std::from_chars(num.data(), num.data() + num.size(), pct);
            if (num.empty() || ec != std::errc() || end != num.data() + num.size() || !(pct > 0) ||
                pct > 100)
                bad("--precision", v,
                    "a percentage (0..100%], such as 5%, or a duration such as 10s");
            p.precision.fraction = pct / 100.0;
            p.precision.absolute.reset();
        } else {
            auto d = parse_duration(v);
            if (!d || d->count() == 0)
                bad("--precision", v, "a percentage such as 5%, or a duration such as 10s");
            p.precision.absolute = *d;
        }
        p.precision.text = v;
    }
    if (!r.min.empty()) p.min = keepalive_seconds("--min", r.min, 32767);
    if (!r.max.empty()) p.max = keepalive_seconds("--max", r.max, 32767);
    if (p.min >= p.max)
        throw UsageError("--min " + format_duration(p.min) + " must be shorter than --max " +
                         format_duration(p.max));
    if (!r.interval.empty()) p.interval = keepalive_seconds("--interval", r.interval, 60);
    if (!r.ladder.empty()) {
        std::size_t pos = 0;
        for (;;) {
            std::size_t comma = r.ladder.find(',', pos);
            std::string item =
                r.ladder.substr(pos, comma == std::string::npos ? comma : comma - pos);
            if (item.empty())
                bad("--ladder", r.ladder,
                    "a comma-separated list of durations such as 30s,60s,120s");
            p.ladder.push_back(keepalive_seconds("--ladder", item, 32767));
            if (comma == std::string::npos) break;
            pos = comma + 1;
        }
        std::sort(p.ladder.begin(), p.ladder.end());
        p.ladder.erase(std::unique(p.ladder.begin(), p.ladder.end()), p.ladder.end());
        if (p.ladder.size() > 64) bad("--ladder", r.ladder, "at most 64 idle times");
        p.connections = std::max<unsigned>(p.connections, unsigned(p.ladder.size()));
        if (!r.min.empty() || !r.max.empty())
            throw UsageError("--ladder cannot be combined with --min/--max (the ladder is the "
                             "exact set of idle times)");
    }
    if (!r.max_time.empty()) {
        auto d = parse_duration(r.max_time);
        if (!d || d->count() == 0 || *d > std::chrono::hours(24 * 7))
            bad("--max-time", r.max_time, "a duration from 1s to 7d, such as 30m or 3h");
        o.max_time = *d;
    }
    // At least the shortest idle time must fit.
    probe::SearchPolicy sizing(p);
    const milliseconds shortest = p.ladder.empty() ? p.min : p.ladder.front();
    if (sizing.round_cost(shortest) > o.max_time)
        throw UsageError("--max-time " + format_duration(o.max_time) +
                         " is too short to probe even " + format_duration(shortest) + " (needs " +
                         format_duration(sizing.round_cost(shortest)) + ")");
    return o;
}

} // namespace rstwatch
