#include <algorithm>
#include <cstring>

#include "report/report.hpp"

namespace rstwatch {

ReportEngine::ReportEngine(std::optional<std::chrono::milliseconds> middlebox_timeout)
    : middlebox_timeout_(middlebox_timeout) {}

void ReportEngine::problem(InputSummary &in, LineProblem p) {
    const auto i = std::size_t(p);
    if (in.problems[i]++ == 0) in.first_line[i] = in.lines;
    if (result_.problems[i]++ == 0) {
        result_.first_input[i] = in.name;
        result_.first_line[i] = in.lines;
    }
}

void ReportEngine::chunk(const LineChunk &c, InputSummary &in) {
    for (std::uint64_t i = 0; i < c.skipped_long_lines; ++i) {
        ++in.lines;
        problem(in, LineProblem::too_long);
    }
    const char *p = c.data;
    const char *const end = c.data + c.size;
    const char *const limit = c.data + c.capacity;
    while (p < end) {
        const char *nl = static_cast<const char *>(std::memchr(p, '\n', std::size_t(end - p)));
        const char *stop = nl ? nl : end;
        std::size_t len = std::size_t(stop - p);
        ++in.lines;
        if (len && p[len - 1] == '\r') --len;
        if (len == 0 || ((*p == ' ' || *p == '\t') && std::all_of(p, p + len, [](char ch) {
                             return ch == ' ' || ch == '\t';
                         }))) {
            ++in.blank;
        } else if (len > kReportMaxLine) {
            problem(in, LineProblem::too_long);
        } else if (auto bad = parser_.parse(p, len, std::size_t(limit - p), line_)) {
            problem(in, *bad);
            if (*bad == LineProblem::unknown_event &&
                result_.unknown_events.size() < kMaxUnknownNames &&
                std::find(result_.unknown_events.begin(), result_.unknown_events.end(),
                          line_.event) == result_.unknown_events.end())
                result_.unknown_events.emplace_back(line_.event);
        } else {
            ++in.accepted;
            agg_.add(line_);
        }
        p = nl ? nl + 1 : end;
    }
}

void ReportEngine::read(LineReader &reader) {
    InputSummary &in = result_.inputs.emplace_back();
    in.name = reader.name();
    LineChunk c;
    while (reader.next(c))
        chunk(c, in);
    in.stats = reader.stats();
    if (in.stats.truncated) problem(in, LineProblem::truncated_gzip);
    if (in.stats.corrupt) problem(in, LineProblem::corrupt_gzip);
    result_.lines += in.lines;
    result_.bytes += in.stats.bytes;
}

ReportResult ReportEngine::finish() {
    ReportResult r = std::move(result_);
    result_ = ReportResult{};
    r.data = agg_.finish();
    if (middlebox_timeout_) r.configured_ms = std::uint64_t(middlebox_timeout_->count());
    r.findings = build_findings(r.data, middlebox_timeout_);
    return r;
}

} // namespace rstwatch
