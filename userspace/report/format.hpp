// rstwatch report, stage 5: the result as report_* NDJSON lines (the
// contract in docs/events.md and schema/report_*.schema.json) or as a
// readable text report.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "report/report.hpp"

namespace rstwatch {

// host/ts: where and when the report was made (every line carries them; the
// host an aggregate is about is "source_host").
void format_report_json(const ReportResult &r, std::string_view host, std::int64_t ts_ns,
                        std::string &out);
void format_report_text(const ReportResult &r, std::string &out);

// 16-byte address as rstwatch prints it (IPv4-mapped as plain IPv4).
std::string report_addr_text(const std::array<std::uint8_t, 16> &a);

} // namespace rstwatch
