// rstwatch report, stage 3: decoded lines to fleet state. The state is keyed by
// host, process and connection (host, netns, 4-tuple), so memory grows with
// how many distinct processes and connections the input names, never with the
// number of lines: a line that repeats a known key only updates it.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "report/parse.hpp"

namespace rstwatch {

// Idle values below this say nothing about an idle timeout: no middlebox
// evicts state after less than a second of silence (docs/report.md).
inline constexpr std::uint64_t kClusterFloorMs = 1000;
// Deaths of one connection within this time of its end (a reset, then its
// connection_closed) belong to the same connection, not to a reused 4-tuple.
inline constexpr std::int64_t kLifetimeGraceNs = 1'000'000'000;
// At most this many report_pair lines (the rest are counted).
inline constexpr std::size_t kMaxPairLines = 1000;

inline constexpr std::size_t kVerdictCount = 6; // Verdict values

// log2 buckets of idle_ms: bucket 0 holds 0 ms, bucket b >= 1 holds
// [2^(b-1), 2^b) ms.
struct IdleHistogram {
    std::array<std::uint64_t, 65> all{};                  // every reset/timeout with a known idle
    std::array<std::uint64_t, 65> middlebox{};            // those caused by a middlebox
    std::uint64_t all_unknown = 0, middlebox_unknown = 0; // idle_ms null
    static unsigned bucket(std::uint64_t ms);
    static std::uint64_t lower(unsigned b) { return b == 0 ? 0 : std::uint64_t(1) << (b - 1); }
    static std::uint64_t upper(unsigned b) { return std::uint64_t(1) << b; } // exclusive
};

// Middlebox-caused deaths: received resets with origin "middlebox" (or
// inferred across hosts), timeouts with verdict keepalive_disabled or
// keepalive_too_slow.
struct MiddleboxDeaths {
    std::uint64_t total = 0;
    std::uint64_t inferred = 0;   // origin inferred from the peer host's events
    std::uint64_t known_idle = 0; // with idle_ms
    std::uint64_t at_or_above_floor = 0;
    std::uint64_t below_floor = 0;
    std::uint64_t min_idle_ms = UINT64_MAX; // over deaths idle >= kClusterFloorMs
};

struct ProcessReport {
    std::uint32_t host = 0;
    bool owned = true; // false: the host's resets nobody's socket owned
    std::uint32_t pid = 0, uid = 0;
    std::string comm, cgroup, container_id;

    std::uint64_t conns_observed = 0, without_ka_observed = 0;     // from per-connection events
    std::uint64_t summary_connections = 0, summary_without_ka = 0; // summed process_summary
    std::uint64_t summary_resets = 0, summary_timeouts = 0;
    std::uint64_t audit_sockets = 0, audit_without_ka = 0; // largest audit_process
    std::vector<std::int64_t> summary_ts;                  // one per session

    std::array<std::uint64_t, kVerdictCount> resets{}, timeouts{}; // by verdict
    std::uint64_t resets_sent = 0, resets_received = 0;
    std::uint64_t mb_deaths = 0, mb_ka_off = 0, mb_ka_on = 0, mb_ka_unknown = 0;
    std::uint64_t mb_min_idle_ms = UINT64_MAX; // idle >= floor
    std::uint32_t mb_max_ka_idle_s = 0;        // slowest keepalive among its deaths
    bool ka_idle_from_socket = false;          // the app sets TCP_KEEPIDLE itself
    std::uint32_t ka_options = 0;              // KaOption bits set successfully

    // Each source sees a subset (a trace without --events connection has no
    // connection_closed, an audit has no process_summary): the largest wins.
    std::uint64_t connections() const;
    std::uint64_t without_keepalive() const;
    std::uint64_t resets_total() const;
    std::uint64_t timeouts_total() const;
};

struct HostReport {
    std::string name;
    std::int64_t first_ts = INT64_MAX, last_ts = INT64_MIN;
    std::uint64_t events = 0, sessions = 0, lost = 0;
    std::uint64_t processes = 0, connections = 0, resets = 0, timeouts = 0;
    std::uint64_t mb_deaths = 0;
    std::uint64_t mb_min_idle_ms = UINT64_MAX;
};

enum class DeathKind : std::uint8_t { none, reset_received, reset_sent, timeout };
std::string_view to_string(DeathKind d);

struct PairSide {
    std::uint32_t host = 0, netns = 0;
    std::uint32_t proc = 0; // index into ReportData::processes
    ReportEndpoint local, remote;
    KaState ka = KaState::unknown;
    std::uint32_t ka_idle_s = 0;
    DeathKind death = DeathKind::none;
};

enum class PairStatus : std::uint8_t { both, neither, one_side, unknown };
std::string_view to_string(PairStatus s);

struct PairReport {
    PairSide a, b;
    PairStatus status = PairStatus::unknown;
};

struct PairCounts {
    std::uint64_t total = 0, both = 0, neither = 0, one_side = 0, unknown = 0;
    std::uint64_t ambiguous = 0; // a 4-tuple seen on more than two sockets
    std::uint64_t emitted = 0, omitted = 0;
};

struct ReportData {
    std::vector<HostReport> hosts;          // index = host id
    std::vector<ProcessReport> processes;   // index = process id
    std::vector<std::uint32_t> worst_first; // process ids, worst first
    std::vector<std::uint32_t> hosts_order; // host ids, most middlebox deaths first
    IdleHistogram histogram;
    MiddleboxDeaths middlebox;
    std::vector<PairReport> pairs; // relevant pairs (a death or one side only)
    PairCounts pair_counts;
    std::uint64_t connections = 0, resets = 0, timeouts = 0, events = 0;
    std::uint64_t duplicates = 0;        // exact repeats of a counted record
    std::uint64_t unresolved_resets = 0; // received, origin unknown, no peer seen
    std::uint64_t ignored = 0;           // report_* lines in the input
};

class Aggregator {
  public:
    Aggregator();
    void add(const ReportLine &line);
    // Resolves what needs the whole input (pairs, cross-host origins) and
    // returns the result; the aggregator is spent afterwards.
    ReportData finish();

    struct StateSize {
        std::size_t hosts, processes, connections, addresses;
    };
    StateSize state_size() const;

  private:
    struct ConnKey {
        std::uint32_t host, netns, laddr, raddr;
        std::uint16_t lport, rport;
        bool operator==(const ConnKey &o) const = default;
    };
    struct Conn {           // 40 bytes: there is one per connection
        std::uint32_t host; // copy of the key's, for the lifetime counters
        std::uint32_t proc;
        std::uint32_t ka_idle_s;
        std::uint32_t pending_idle_ms; // a received reset of unknown origin (u32 like idle_ms)
        std::uint32_t pending_proc;
        KaState ka;
        std::uint8_t flags;
        DeathKind death;
        std::int64_t death_ts; // newest death counted (F_DIED)
        std::int64_t close_ts; // connection_closed (F_CLOSED)
    };
    static_assert(sizeof(Conn) == 40, "one per connection: keep it small");
    enum class Role { observe, death, close };

    // Open addressing (4 bytes per slot) over items stored densely in fixed
    // chunks: an item never moves, and growth never copies the items, so
    // peak memory stays close to what the items need.
    template <class K, class V, class H> class DenseMap {
      public:
        std::pair<std::uint32_t, bool> try_emplace(const K &k);
        V &operator[](std::uint32_t i) { return item(i).second; }
        const K &key(std::uint32_t i) const {
            return chunks_[i >> kChunkBits][i & (kChunk - 1)].first;
        }
        std::size_t size() const { return size_; }

      private:
        static constexpr unsigned kChunkBits = 14;
        static constexpr std::size_t kChunk = std::size_t(1) << kChunkBits;
        std::pair<K, V> &item(std::uint32_t i) {
            return chunks_[i >> kChunkBits][i & (kChunk - 1)];
        }
        void grow();
        std::vector<std::unique_ptr<std::pair<K, V>[]>> chunks_;
        std::size_t size_ = 0;
        std::vector<std::uint32_t> slots_; // 0 empty, else index + 1
    };
    struct KeyHash {
        std::size_t operator()(const ConnKey &k) const;
        std::size_t operator()(const std::array<std::uint8_t, 16> &a) const;
    };
    struct ProcKey {
        std::uint32_t host, pid;
        std::array<char, 16> comm; // the kernel's comm fits 15 bytes + NUL
        bool operator==(const ProcKey &o) const = default;
    };
    struct ProcKeyHash {
        std::size_t operator()(const ProcKey &k) const;
    };

    std::uint32_t host_id(std::string_view name);
    std::uint32_t proc_id(std::uint32_t host, const ReportLine &l);
    std::uint32_t addr_id(const std::array<std::uint8_t, 16> &a);
    // The connection this event belongs to; nullptr for an exact duplicate.
    Conn *conn_for(std::uint32_t host, const ReportLine &l, std::uint32_t proc, Role role,
                   DeathKind death);
    void start_lifetime(Conn &c, std::uint32_t proc);
    void end_lifetime(Conn &c);
    void update_ka(Conn &c, const ReportLine &l);
    void middlebox_death(std::uint32_t host, std::uint32_t proc, bool has_idle,
                         std::uint64_t idle_ms, KaState ka, std::uint32_t ka_idle_s, bool inferred);
    void count_death_idle(const ReportLine &l);
    void resolve_pairs(ReportData &out);

    void on_reset(std::uint32_t host, const ReportLine &l);
    void on_timeout(std::uint32_t host, const ReportLine &l);

    std::vector<HostReport> hosts_;
    std::unordered_map<std::string, std::uint32_t> host_ids_;
    std::string last_host_;
    std::uint32_t last_host_id_ = UINT32_MAX;
    std::vector<ProcessReport> procs_;
    std::unordered_map<ProcKey, std::uint32_t, ProcKeyHash> proc_ids_;
    std::vector<std::uint32_t> unowned_; // per host: its pseudo-process, or UINT32_MAX
    DenseMap<std::array<std::uint8_t, 16>, std::uint8_t, KeyHash> addrs_; // index = id
    DenseMap<ConnKey, Conn, KeyHash> conns_;
    ReportData data_;
};

} // namespace rstwatch
