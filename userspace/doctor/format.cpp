// doctor, output: doctor_check lines (NDJSON) and the text report.
#include "doctor/doctor.hpp"

#include "util/clock.hpp"
#include "util/json_writer.hpp"
#include "util/units.hpp"

namespace rstwatch::doctor {

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
