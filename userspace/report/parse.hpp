// rstwatch report, stage 2: one NDJSON line to the few fields the report
// uses. simdjson On Demand walks each object once, in place, without building
// a DOM; the simdjson types stay inside report_parse.cpp.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "event/diagnose.hpp"

namespace rstwatch {

// Why a line was not used. Every class is counted and reported once at the end.
enum class LineProblem : std::uint8_t {
    not_json,       // not valid JSON (or trailing bytes after the value)
    not_object,     // valid JSON, but not an object
    missing_field,  // a field the event type requires is absent
    wrong_type,     // a field has the wrong JSON type
    bad_value,      // right type, impossible value (timestamp, address, port, verdict...)
    unknown_event,  // "event" names no type this version knows
    newer_version,  // "v" is newer than this rstwatch reads
    too_long,       // longer than kReportMaxLine
    truncated_gzip, // input-level: the gzip stream stops early
    corrupt_gzip,   // input-level: gzip data error or trailing garbage
};
inline constexpr std::size_t kLineProblemCount = 10;
std::string_view to_string(LineProblem p);

enum class ReportEventKind : std::uint8_t {
    tcp_reset,
    tcp_timeout,
    connection_closed,
    keepalive_set,
    process_summary,
    audit_socket,
    audit_process,
    lost,
    session_start,
    session_summary,
    report_output, // report_* lines fed back in: known, ignored
};

enum class KaState : std::uint8_t { unknown, off, on };

// Keepalive socket options as keepalive_set names them (bit = 1 << value).
enum class KaOption : std::uint8_t {
    so_keepalive,
    tcp_keepidle,
    tcp_keepintvl,
    tcp_keepcnt,
    tcp_user_timeout,
    other,
};

struct ReportEndpoint {
    std::array<std::uint8_t, 16> addr{}; // IPv6 form; IPv4 as ::ffff:a.b.c.d
    std::uint16_t port = 0;
};

// One decoded line. Views point into the line or the parser and stay valid
// until the next parse().
struct ReportLine {
    ReportEventKind kind{};
    std::string_view event; // as written (for unknown_event reporting)
    std::string_view host;
    std::int64_t ts_ns = 0;

    bool has_process = false; // present and not null
    std::uint32_t pid = 0, uid = 0;
    std::string_view comm;
    std::string_view cgroup;       // empty when absent or null
    std::string_view container_id; // empty when absent or null

    bool has_local = false, has_remote = false; // present and not null
    ReportEndpoint local, remote;
    std::uint32_t netns = 0;

    KaState ka = KaState::unknown; // keepalive.enabled (unknown: null/absent)
    std::uint32_t ka_idle_s = 0;
    bool ka_idle_from_socket = false;

    bool has_idle = false;
    std::uint64_t idle_ms = 0;
    Verdict verdict = Verdict::unknown;
    Origin origin = Origin::unknown;
    bool sent = false; // tcp_reset direction

    // process_summary / audit_process / lost
    std::uint64_t connections = 0, without_keepalive = 0, resets_received = 0, resets_sent = 0,
                  timeouts = 0, sockets = 0, lost = 0;
    // keepalive_set
    KaOption option = KaOption::other;
    std::int64_t value = 0, result = 0;
};

class LineParser {
  public:
    LineParser();
    ~LineParser();
    LineParser(const LineParser &) = delete;
    LineParser &operator=(const LineParser &) = delete;

    // Parses data[0, len); data[len, capacity) must be readable (padding).
    // nullopt: `out` holds the line; otherwise why it was rejected.
    std::optional<LineProblem> parse(const char *data, std::size_t len, std::size_t capacity,
                                     ReportLine &out);

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// "2026-11-24T20:46:01.123456789Z" (fraction optional, 1-9 digits; "Z" or
// "+hh:mm"/"-hh:mm") to ns since the epoch.
std::optional<std::int64_t> parse_rfc3339_ns(std::string_view s);

// Address text as rstwatch prints it (IPv4, IPv6, IPv4-mapped IPv6) to the
// 16-byte IPv6 form, so that 10.0.0.1 and ::ffff:10.0.0.1 compare equal.
bool parse_report_addr(std::string_view s, std::array<std::uint8_t, 16> &out);

} // namespace rstwatch
