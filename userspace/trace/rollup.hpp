// End-of-session and audit roll-ups per process: pure functions over the
// kernel's per-process counters and socket snapshots.
#pragma once

#include <chrono>
#include <optional>
#include <utility>
#include <vector>

#include "event/events.hpp"
#include "event/options.hpp"
#include "rstwatch/records.h"

namespace rstwatch {

// Sockets of a snapshot that are connections (not listening, not handshaking).
bool is_connection(const rw_snapshot &s);

// Options visible in a socket's own state (RW_OPT_*).
std::uint32_t options_in_socket(const rw_keepalive &ka);

// process_summary rows: closed connections from the kernel counters, plus the
// connections still open at the end, plus `closing`: connections their owner
// already closed whose FIN handshake had not finished (no fd left for the
// snapshot, not yet counted by the kernel). Filtered by pid/comm; worst first.
std::vector<ProcessSummary>
build_process_summaries(const std::vector<std::pair<std::uint32_t, rw_proc_stats>> &stats,
                        const std::vector<rw_snapshot> &open,
                        const std::vector<rw_sock_info> &closing, const FilterOptions &filter);

// Audit risk of one connection against a middlebox idle timeout.
Risk audit_risk(const rw_snapshot &s, std::chrono::milliseconds middlebox_timeout);

struct AuditResult {
    std::vector<AuditSocket> sockets; // references into the snapshot vector
    std::vector<AuditProcess> processes;
};

// Groups a snapshot into audit records: each socket once per process holding
// it (shared=true when several do), filtered, processes worst first.
AuditResult build_audit(const std::vector<rw_snapshot> &snap, const FilterOptions &filter,
                        std::optional<std::chrono::milliseconds> middlebox_timeout,
                        std::int64_t ts_ns);

} // namespace rstwatch
