#include "output/verify_format.hpp"

#include <algorithm>

#include "output/json_fields.hpp"
#include "util/json_writer.hpp"

namespace rstwatch {

std::string_view verify_status(const ProgramStatus &st) {
    if (st.loaded) return "loaded";
    return st.essential ? "failed" : "left_out";
}

void merge_statuses(std::vector<VerifyRow> &rows, const std::string &object,
                    const std::vector<ProgramStatus> &statuses) {
    for (const auto &st : statuses) {
        auto it = std::find_if(rows.begin(), rows.end(), [&](const VerifyRow &r) {
            return r.object == object && r.st.program == st.program;
        });
        if (it == rows.end())
            rows.push_back({object, st});
        else if (!st.loaded && it->st.loaded)
            it->st = st; // refused in one configuration: the commands using it lose it
    }
}

VerifyCounts count_statuses(const std::vector<VerifyRow> &rows) {
    VerifyCounts c;
    for (const auto &r : rows)
        (r.st.loaded ? c.loaded : r.st.essential ? c.failed : c.left_out) += 1;
    return c;
}

namespace {

// An essential program has no `lost` of its own: without it the command stops.
std::string lost_of(const ProgramStatus &st) {
    return st.lost.empty() ? "the commands that need it cannot run" : st.lost;
}

} // namespace

void format_verify(std::string &out, const std::vector<VerifyRow> &rows, Format format,
                   const std::string &host, std::string_view kernel, std::int64_t ts_ns) {
    const VerifyCounts c = count_statuses(rows);
    if (format == Format::text) {
        out += "kernel " + std::string(kernel) + "\n";
        for (const auto &r : rows) {
            out += r.object + "\t" + r.st.program + "\t" + r.st.section + "\t" +
                   std::string(verify_status(r.st));
            if (!r.st.loaded) out += "\t" + lost_of(r.st) + " (" + r.st.reason + ")";
            out += "\n";
        }
        out += std::to_string(rows.size()) + " programs: " + std::to_string(c.loaded) +
               " loaded, " + std::to_string(c.left_out) + " left out, " + std::to_string(c.failed) +
               " failed\n";
        return;
    }
    json_fields::Envelope env(host);
    for (const auto &r : rows) {
        JsonWriter w = env.begin(out, "bpf_program", ts_ns);
        w.field("object", r.object).field("program", r.st.program);
        w.field("section", r.st.section).field_bool("essential", r.st.essential);
        w.field("status", verify_status(r.st));
        if (r.st.loaded)
            w.field_null("lost").field_null("reason");
        else
            w.field("lost", lost_of(r.st)).field("reason", r.st.reason);
        json_fields::Envelope::end(w, out);
    }
    JsonWriter w = env.begin(out, "verify_summary", ts_ns);
    w.field_unum("programs", rows.size()).field_unum("loaded", c.loaded);
    w.field_unum("left_out", c.left_out).field_unum("failed", c.failed);
    json_fields::Envelope::end(w, out);
}

} // namespace rstwatch
