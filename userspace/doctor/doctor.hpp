// rstwatch doctor: the incident's triage as checks. Reading the system (a /proc
// and /etc tree, real or a test fixture) and judging it are pure functions here;
// userspace/cmd/doctor.cpp gathers the facts (namespaces, privileges, the BPF
// socket iterator) and prints the records.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "trace/rollup.hpp"

namespace rstwatch::doctor {

enum class Status { ok, warn, fail };
std::string_view to_string(Status s);

// A process holding connections, for the keepalive_off_connections check.
struct ProcessConnections {
    std::uint32_t pid = 0;
    std::string comm;
    std::uint64_t connections = 0;
    std::uint64_t without_keepalive = 0;
    std::uint64_t expired = 0; // risk counts when a timeout is known
    std::uint64_t exposed = 0;
};

// One doctor_check record (docs/events.md).
struct Check {
    std::string id;
    Status status = Status::ok;
    std::string observed;
    std::string expected;
    std::string fix; // empty: nothing to do (null in JSON)
    bool skipped = false;
    std::vector<ProcessConnections> processes; // keepalive_off_connections only
};

// ---- sysctl.conf / sysctl.d ----

struct SysctlSetting {
    std::string key; // normalised: '.' separators
    std::string value;
    std::string file; // path as seen on the system (without the --root prefix)
    int line = 0;
};

// "net/ipv4/tcp_keepalive_time" -> "net.ipv4.tcp_keepalive_time" (sysctl.d(5):
// when the first separator is '/', '/' separates and '.' belongs to names).
std::string normalize_sysctl_key(std::string_view key);

// One sysctl.conf(5) / sysctl.d(5) file: "key = value" lines, '#' and ';'
// comments, a leading '-' (ignore failures). Lines without '=' are skipped.
std::vector<SysctlSetting> parse_sysctl_conf(std::string_view text, const std::string &file);

// A sysctl value as an integer (surrounding blanks ignored); nullopt if it is not one.
std::optional<std::int64_t> sysctl_int(std::string_view value);

// What a boot applies: */sysctl.d/*.conf from /etc, /run, /usr/local/lib,
// /usr/lib, /lib (a file name in an earlier directory masks the same name
// later; /dev/null masks), in file-name order, then /etc/sysctl.conf (procps
// reads it last). The last setting of a key wins. `root` prefixes every path.
std::map<std::string, SysctlSetting> persisted_sysctls(const std::string &root);

// ---- runtime facts of one network namespace (/proc/sys is per netns) ----

// root/proc/sys/<key with '/'>, as an integer; nullopt if absent or not a number.
std::optional<std::int64_t> read_sysctl_int(const std::string &root, std::string_view key);

struct NetnsFacts {
    std::optional<std::int64_t> keepalive_time, keepalive_intvl, keepalive_probes;
    bool conntrack_loaded = false; // net.netfilter.nf_conntrack_* exist here
    std::optional<std::int64_t> ct_established, ct_count, ct_max;
};
NetnsFacts read_netns_facts(const std::string &root);

// Where the checks run.
struct Context {
    std::optional<std::chrono::milliseconds> middlebox_timeout; // --middlebox-timeout
    bool host_netns = true;       // /etc/sysctl.d applies only to the host namespace
    std::string netns_name;       // `ip netns` name, empty if none
    std::uint32_t netns = 0;      // inode
    std::uint32_t holder_pid = 0; // a process in it, for nsenter (0: unknown)
};

// The timeout a connection in this namespace must survive: the smaller of
// --middlebox-timeout and the local conntrack established timeout.
struct TimeoutBound {
    std::chrono::seconds value{0};
    std::string source; // "--middlebox-timeout", "nf_conntrack_tcp_timeout_established"
};
std::optional<TimeoutBound> timeout_bound(const NetnsFacts &f, const Context &ctx);

// What keepalive must beat: the bound, and without --middlebox-timeout also
// the shortest common cloud default (source "cloud-default"), whichever is
// shorter. Exceeding a bound fails; exceeding only the cloud default warns.
TimeoutBound check_target(const std::optional<TimeoutBound> &bound, const Context &ctx);

// Keepalive settings to recommend against a target.
struct Recommendation {
    std::int64_t time_s, intvl_s, probes;
};
Recommendation recommend(const NetnsFacts &f, const TimeoutBound &target);

// The shortest default idle timeout among the common cloud middleboxes
// (docs/middleboxes.md), the yardstick when no timeout is known.
std::chrono::seconds shortest_cloud_timeout();

// tcp_keepalive_time/intvl/probes, conntrack timeout and table, persistence.
std::vector<Check> sysctl_checks(const NetnsFacts &f,
                                 const std::map<std::string, SysctlSetting> &persisted,
                                 const Context &ctx);

// keepalive_off_connections from an audit of this namespace's connections.
Check connections_check(const AuditResult &audit, const std::optional<TimeoutBound> &bound,
                        const NetnsFacts &f, const Context &ctx);
Check connections_skipped(const std::string &why);

// Exit code of a whole run: 1 when any check failed, else 0.
int exit_code(const std::vector<Check> &checks);

// ---- output ----

struct Scope {
    std::uint32_t netns = 0;
    std::string netns_name;
};
void append_json(std::string &out, const Check &c, const Scope &scope, std::int64_t ts_ns,
                 const std::string &host);
// Human-readable report of one namespace's checks.
void append_text(std::string &out, const std::vector<Check> &checks, const Scope &scope,
                 const std::string &host, bool color);

} // namespace rstwatch::doctor
