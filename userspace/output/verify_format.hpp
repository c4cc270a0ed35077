// `rstwatch verify` output: one bpf_program line per program and a
// verify_summary (docs/events.md), or a text table. No libbpf: the loader
// hands over plain ProgramStatus values.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "event/left_out.hpp"
#include "event/options.hpp"

namespace rstwatch {

struct VerifyRow {
    std::string object; // trace, enforce
    ProgramStatus st;
};

// loaded, left_out (optional, refused) or failed (essential, refused).
std::string_view verify_status(const ProgramStatus &st);

// Adds `statuses` of `object` to `rows`; a program asked for by several
// configurations counts as loaded only if every one of them loaded it (5.10
// refuses rw_enf_existing in one enforce mode and not the other).
void merge_statuses(std::vector<VerifyRow> &rows, const std::string &object,
                    const std::vector<ProgramStatus> &statuses);

struct VerifyCounts {
    std::size_t loaded = 0, left_out = 0, failed = 0;
};
VerifyCounts count_statuses(const std::vector<VerifyRow> &rows);

void format_verify(std::string &out, const std::vector<VerifyRow> &rows, Format format,
                   const std::string &host, std::string_view kernel, std::int64_t ts_ns);

} // namespace rstwatch
