// rstwatch report: NDJSON collected from many hosts -> fleet answers. Ties the
// stages together: LineReader (bytes, gzip) -> LineParser (one line) ->
// Aggregator (state keyed by host/process/connection) -> build_findings ->
// report formatters. Rules and output: docs/report.md, docs/events.md.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "report/aggregate.hpp"
#include "report/input.hpp"
#include "report/parse.hpp"
#include "report/rules.hpp"

namespace rstwatch {

struct InputSummary {
    std::string name;
    InputStats stats;
    std::uint64_t lines = 0;    // including blank and rejected lines
    std::uint64_t blank = 0;    // empty or whitespace only (ignored, not malformed)
    std::uint64_t accepted = 0; // events aggregated
    std::array<std::uint64_t, kLineProblemCount> problems{};
    std::array<std::uint64_t, kLineProblemCount> first_line{}; // 1-based, 0: none
};

struct ReportResult {
    std::vector<InputSummary> inputs;
    ReportData data;
    std::vector<Finding> findings;
    std::optional<std::uint64_t> configured_ms; // --middlebox-timeout
    std::uint64_t lines = 0, bytes = 0;
    std::array<std::uint64_t, kLineProblemCount> problems{};
    // First input and line of each problem class.
    std::array<std::string, kLineProblemCount> first_input{};
    std::array<std::uint64_t, kLineProblemCount> first_line{};
    std::vector<std::string> unknown_events; // distinct names, at most kMaxUnknownNames
};

inline constexpr std::size_t kMaxUnknownNames = 10;

class ReportEngine {
  public:
    explicit ReportEngine(std::optional<std::chrono::milliseconds> middlebox_timeout = {});
    // Reads one input to its end.
    void read(LineReader &reader);
    ReportResult finish();
    Aggregator::StateSize state_size() const { return agg_.state_size(); }

  private:
    void problem(InputSummary &in, LineProblem p);
    void chunk(const LineChunk &c, InputSummary &in);

    std::optional<std::chrono::milliseconds> middlebox_timeout_;
    LineParser parser_;
    Aggregator agg_;
    ReportLine line_;
    ReportResult result_;
};

} // namespace rstwatch
