#include "report/aggregate.hpp"

#include <algorithm>
#include <cstring>

namespace rstwatch {

namespace {

inline std::uint64_t mix(std::uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

constexpr std::uint8_t F_ENDED = 1;      // died or closed
constexpr std::uint8_t F_CLOSED = 2;     // connection_closed seen
constexpr std::uint8_t F_DIED = 4;       // reset or timeout seen
constexpr std::uint8_t F_SENT_RESET = 8; // this socket sent an RST
constexpr std::uint8_t F_PENDING = 16;   // received RST, origin unknown, not yet resolved
constexpr std::uint8_t F_PENDING_IDLE = 32;

bool middlebox_timeout_verdict(Verdict v) {
    return v == Verdict::keepalive_disabled || v == Verdict::keepalive_too_slow;
}

} // namespace

std::string_view to_string(DeathKind d) {
    switch (d) {
    case DeathKind::reset_received:
        return "reset_received";
    case DeathKind::reset_sent:
        return "reset_sent";
    case DeathKind::timeout:
        return "timeout";
    case DeathKind::none:
        break;
    }
    return "none";
}

std::string_view to_string(PairStatus s) {
    switch (s) {
    case PairStatus::both:
        return "both";
    case PairStatus::neither:
        return "neither";
    case PairStatus::one_side:
        return "one_side";
    case PairStatus::unknown:
        break;
    }
    return "unknown";
}

unsigned IdleHistogram::bucket(std::uint64_t ms) {
    return ms == 0 ? 0 : unsigned(64 - __builtin_clzll(ms));
}

std::uint64_t ProcessReport::connections() const {
    return std::max({conns_observed, summary_connections, audit_sockets});
}
std::uint64_t ProcessReport::without_keepalive() const {
    return std::max({without_ka_observed, summary_without_ka, audit_without_ka});
}
std::uint64_t ProcessReport::resets_total() const {
    return std::max(resets_sent + resets_received, summary_resets);
}
std::uint64_t ProcessReport::timeouts_total() const {
    std::uint64_t n = 0;
    for (auto c : timeouts)
        n += c;
    return std::max(n, summary_timeouts);
}

// ---- hashing ----

std::size_t Aggregator::KeyHash::operator()(const ConnKey &k) const {
    std::uint64_t a = (std::uint64_t(k.host) << 32) | k.netns;
    std::uint64_t b = (std::uint64_t(k.laddr) << 32) | k.raddr;
    std::uint64_t c = (std::uint64_t(k.lport) << 16) | k.rport;
    return mix(a ^ mix(b ^ mix(c)));
}

std::size_t Aggregator::KeyHash::operator()(const std::array<std::uint8_t, 16> &x) const {
    std::uint64_t a, b;
    std::memcpy(&a, x.data(), 8);
    std::memcpy(&b, x.data() + 8, 8);
    return mix(a ^ mix(b));
}

std::size_t Aggregator::ProcKeyHash::operator()(const ProcKey &k) const {
    std::uint64_t a, b;
    std::memcpy(&a, k.comm.data(), 8);
    std::memcpy(&b, k.comm.data() + 8, 8);
    return mix(((std::uint64_t(k.host) << 32) | k.pid) ^ mix(a ^ mix(b)));
}

template <class K, class V, class H>
std::pair<std::uint32_t, bool> Aggregator::DenseMap<K, V, H>::try_emplace(const K &k) {
    if ((size_ + 1) * 10 > slots_.size() * 7) grow();
    const std::size_t mask = slots_.size() - 1;
    std::size_t i = H{}(k)&mask;
    while (std::uint32_t s = slots_[i]) {
        if (key(s - 1) == k) return {s - 1, false};
        i = (i + 1) & mask;
    }
    if ((size_ & (kChunk - 1)) == 0)
        chunks_.push_back(std::make_unique_for_overwrite<std::pair<K, V>[]>(kChunk));
    const auto idx = std::uint32_t(size_++);
    item(idx) = {k, V{}};
    slots_[i] = idx + 1;
    return {idx, true};
}

template <class K, class V, class H> void Aggregator::DenseMap<K, V, H>::grow() {
    std::size_t n = std::max<std::size_t>(64, slots_.size() * 2);
    slots_.assign(n, 0);
    const std::size_t mask = n - 1;
    for (std::size_t j = 0; j < size_; ++j) {
        std::size_t i = H{}(key(std::uint32_t(j))) & mask;
        while (slots_[i])
            i = (i + 1) & mask;
        slots_[i] = std::uint32_t(j + 1);
    }
}

// ---- state ----

Aggregator::Aggregator() = default;

Aggregator::StateSize Aggregator::state_size() const {
    return {hosts_.size(), procs_.size(), conns_.size(), addrs_.size()};
}

std::uint32_t Aggregator::host_id(std::string_view name) {
    // Lines come in runs from one host: compare with the last one first.
    if (last_host_id_ != UINT32_MAX && name == last_host_) return last_host_id_;
    std::string key(name);
    auto it = host_ids_.find(key);
    std::uint32_t id;
    if (it == host_ids_.end()) {
        id = std::uint32_t(hosts_.size());
        host_ids_.emplace(key, id);
        hosts_.emplace_back().name = key;
        unowned_.push_back(UINT32_MAX);
    } else {
        id = it->second;
    }
    last_host_ = std::move(key);
    last_host_id_ = id;
    return id;
}

std::uint32_t Aggregator::proc_id(std::uint32_t host, const ReportLine &l) {
    if (!l.has_process) {
        std::uint32_t &u = unowned_[host];
        if (u == UINT32_MAX) {
            u = std::uint32_t(procs_.size());
            auto &p = procs_.emplace_back();
            p.host = host;
            p.owned = false;
            ++hosts_[host].processes;
        }
        return u;
    }
    ProcKey k{host, l.pid, {}};
    std::memcpy(k.comm.data(), l.comm.data(), std::min<std::size_t>(l.comm.size(), 15));
    auto [it, inserted] = proc_ids_.try_emplace(k, std::uint32_t(procs_.size()));
    if (inserted) {
        auto &p = procs_.emplace_back();
        p.host = host;
        p.pid = l.pid;
        p.comm.assign(l.comm.substr(0, 15));
        ++hosts_[host].processes;
    }
    ProcessReport &p = procs_[it->second];
    p.uid = l.uid;
    if (!l.cgroup.empty() && p.cgroup != l.cgroup) p.cgroup.assign(l.cgroup);
    if (!l.container_id.empty() && p.container_id != l.container_id)
        p.container_id.assign(l.container_id);
    return it->second;
}

std::uint32_t Aggregator::addr_id(const std::array<std::uint8_t, 16> &a) {
    return addrs_.try_emplace(a).first;
}

void Aggregator::start_lifetime(Conn &c, std::uint32_t proc) {
    c.proc = proc;
    c.ka = KaState::unknown;
    c.ka_idle_s = 0;
    c.death_ts = c.close_ts = 0;
    c.flags &= F_PENDING | F_PENDING_IDLE; // a pending reset outlives the 4-tuple's reuse
    c.death = DeathKind::none;
    ++procs_[proc].conns_observed;
    ++hosts_[c.host].connections;
    ++data_.connections;
}

void Aggregator::end_lifetime(Conn &c) {
    if (c.ka == KaState::off) ++procs_[c.proc].without_ka_observed;
}

Aggregator::Conn *Aggregator::conn_for(std::uint32_t host, const ReportLine &l, std::uint32_t proc,
                                       Role role, DeathKind death) {
    ConnKey key{host,         l.netns,      addr_id(l.local.addr), addr_id(l.remote.addr),
                l.local.port, l.remote.port};
    auto [idx, inserted] = conns_.try_emplace(key);
    Conn &c = conns_[idx];
    const std::int64_t ts = l.ts_ns;
    if (inserted) {
        c.host = host;
        c.flags = 0;
        c.pending_idle_ms = 0;
        c.pending_proc = 0;
        start_lifetime(c, proc);
        return &c;
    }
    // Exact repeats of a record already counted (an input read twice, a
    // shipper that delivers at least once).
    if (role == Role::death && (c.flags & F_DIED) && c.death_ts == ts && c.death == death)
        return nullptr;
    if (role == Role::close && (c.flags & F_CLOSED) && c.close_ts == ts) return nullptr;

    bool new_lifetime = false;
    if (c.flags & F_ENDED) {
        const std::int64_t end_ts = std::max((c.flags & F_DIED) ? c.death_ts : INT64_MIN,
                                             (c.flags & F_CLOSED) ? c.close_ts : INT64_MIN);
        if (ts > end_ts + kLifetimeGraceNs)
            new_lifetime = true;
        else if (role == Role::death && (c.flags & F_DIED) && ts > c.death_ts)
            new_lifetime = true; // a second death: the 4-tuple was reused at once
        else if (role == Role::close && (c.flags & F_CLOSED) && ts > c.close_ts)
            new_lifetime = true;
    }
    if (new_lifetime) {
        end_lifetime(c);
        start_lifetime(c, proc);
    } else if (!procs_[c.proc].owned && procs_[proc].owned) {
        // The owner became known (the first event had no process).
        --procs_[c.proc].conns_observed;
        ++procs_[proc].conns_observed;
        c.proc = proc;
    }
    return &c;
}

void Aggregator::update_ka(Conn &c, const ReportLine &l) {
    if (l.ka == KaState::unknown) return;
    c.ka = l.ka;
    c.ka_idle_s = l.ka_idle_s;
}

void Aggregator::count_death_idle(const ReportLine &l) {
    if (l.has_idle)
        ++data_.histogram.all[IdleHistogram::bucket(l.idle_ms)];
    else
        ++data_.histogram.all_unknown;
}

void Aggregator::middlebox_death(std::uint32_t host, std::uint32_t proc, bool has_idle,
                                 std::uint64_t idle_ms, KaState ka, std::uint32_t ka_idle_s,
                                 bool inferred) {
    MiddleboxDeaths &mb = data_.middlebox;
    ++mb.total;
    if (inferred) ++mb.inferred;
    ProcessReport &p = procs_[proc];
    ++p.mb_deaths;
    if (ka == KaState::off)
        ++p.mb_ka_off;
    else if (ka == KaState::on) {
        ++p.mb_ka_on;
        p.mb_max_ka_idle_s = std::max(p.mb_max_ka_idle_s, ka_idle_s);
    } else
        ++p.mb_ka_unknown;
    HostReport &h = hosts_[host];
    ++h.mb_deaths;
    if (!has_idle) {
        ++data_.histogram.middlebox_unknown;
        return;
    }
    ++data_.histogram.middlebox[IdleHistogram::bucket(idle_ms)];
    ++mb.known_idle;
    if (idle_ms < kClusterFloorMs) {
        ++mb.below_floor;
        return;
    }
    ++mb.at_or_above_floor;
    mb.min_idle_ms = std::min(mb.min_idle_ms, idle_ms);
    p.mb_min_idle_ms = std::min(p.mb_min_idle_ms, idle_ms);
    h.mb_min_idle_ms = std::min(h.mb_min_idle_ms, idle_ms);
}

void Aggregator::on_reset(std::uint32_t host, const ReportLine &l) {
    const std::uint32_t proc = proc_id(host, l);
    Conn *c = nullptr;
    // An RST answering a segment for no socket (closed port, SYN scan) is
    // not a connection: counting it as one would let a port scan grow state.
    if (l.has_local && l.has_remote && l.verdict != Verdict::no_socket) {
        const DeathKind kind = l.sent ? DeathKind::reset_sent : DeathKind::reset_received;
        c = conn_for(host, l, proc, Role::death, kind);
        if (!c) {
            ++data_.duplicates;
            return;
        }
        c->flags |= F_ENDED | F_DIED;
        c->death = kind;
        c->death_ts = l.ts_ns;
        update_ka(*c, l);
    }
    ProcessReport &p = procs_[proc];
    ++p.resets[std::size_t(l.verdict)];
    ++(l.sent ? p.resets_sent : p.resets_received);
    ++hosts_[host].resets;
    ++data_.resets;
    count_death_idle(l);
    if (l.sent) {
        if (c) c->flags |= F_SENT_RESET;
        return;
    }
    if (l.origin == Origin::middlebox) {
        middlebox_death(host, proc, l.has_idle, l.idle_ms, c ? c->ka : l.ka,
                        c ? c->ka_idle_s : l.ka_idle_s, false);
    } else if (l.origin == Origin::unknown && c) {
        // Who sent it is decided at the end, from the peer host's events.
        if (c->flags & F_PENDING) ++data_.unresolved_resets;
        c->flags = std::uint8_t((c->flags & ~F_PENDING_IDLE) | F_PENDING |
                                (l.has_idle ? F_PENDING_IDLE : 0));
        c->pending_idle_ms = std::uint32_t(std::min<std::uint64_t>(l.idle_ms, UINT32_MAX));
        c->pending_proc = proc;
    }
}

void Aggregator::on_timeout(std::uint32_t host, const ReportLine &l) {
    const std::uint32_t proc = proc_id(host, l);
    Conn *c = nullptr;
    if (l.has_local && l.has_remote) {
        c = conn_for(host, l, proc, Role::death, DeathKind::timeout);
        if (!c) {
            ++data_.duplicates;
            return;
        }
        c->flags |= F_ENDED | F_DIED;
        c->death = DeathKind::timeout;
        c->death_ts = l.ts_ns;
        update_ka(*c, l);
    }
    ++procs_[proc].timeouts[std::size_t(l.verdict)];
    ++hosts_[host].timeouts;
    ++data_.timeouts;
    count_death_idle(l);
    // A silent drop has no sender to ask: the verdict (keepalive off or
    // slower than the idle that preceded the death) is the evidence.
    if (middlebox_timeout_verdict(l.verdict))
        middlebox_death(host, proc, l.has_idle, l.idle_ms, l.ka, l.ka_idle_s, false);
}

void Aggregator::add(const ReportLine &l) {
    // A previous report fed back in: its "host" is where it ran, not a host
    // of the fleet, so it must not appear as one.
    if (l.kind == ReportEventKind::report_output) {
        ++data_.ignored;
        return;
    }
    const std::uint32_t host = host_id(l.host);
    HostReport &h = hosts_[host];
    ++h.events;
    ++data_.events;
    h.first_ts = std::min(h.first_ts, l.ts_ns);
    h.last_ts = std::max(h.last_ts, l.ts_ns);
    switch (l.kind) {
    case ReportEventKind::tcp_reset:
        on_reset(host, l);
        break;
    case ReportEventKind::tcp_timeout:
        on_timeout(host, l);
        break;
    case ReportEventKind::connection_closed: {
        const std::uint32_t proc = proc_id(host, l);
        if (!l.has_local || !l.has_remote) break;
        Conn *c = conn_for(host, l, proc, Role::close, DeathKind::none);
        if (!c) {
            ++data_.duplicates;
            break;
        }
        c->flags |= F_ENDED | F_CLOSED;
        c->close_ts = l.ts_ns;
        update_ka(*c, l);
        break;
    }
    case ReportEventKind::audit_socket: {
        const std::uint32_t proc = proc_id(host, l);
        if (!l.has_local || !l.has_remote) break;
        if (Conn *c = conn_for(host, l, proc, Role::observe, DeathKind::none)) update_ka(*c, l);
        break;
    }
    case ReportEventKind::keepalive_set: {
        const std::uint32_t proc = proc_id(host, l);
        if (l.result != 0 || l.option == KaOption::other) break; // failed: changed nothing
        procs_[proc].ka_options |= 1u << unsigned(l.option);
        if (l.option == KaOption::tcp_keepidle) procs_[proc].ka_idle_from_socket = true;
        // Set before connect(): no 4-tuple yet, the process row keeps it.
        if (!l.has_local || !l.has_remote || !l.local.port || !l.remote.port) break;
        Conn *c = conn_for(host, l, proc, Role::observe, DeathKind::none);
        if (!c) break;
        if (l.option == KaOption::so_keepalive)
            c->ka = l.value ? KaState::on : KaState::off;
        else if (l.option == KaOption::tcp_keepidle && l.value > 0)
            c->ka_idle_s = std::uint32_t(l.value);
        break;
    }
    case ReportEventKind::process_summary: {
        ProcessReport &p = procs_[proc_id(host, l)];
        // One summary per process and session; the same one twice is a repeat.
        if (std::find(p.summary_ts.begin(), p.summary_ts.end(), l.ts_ns) != p.summary_ts.end()) {
            ++data_.duplicates;
            break;
        }
        p.summary_ts.push_back(l.ts_ns);
        p.summary_connections += l.connections;
        p.summary_without_ka += l.without_keepalive;
        p.summary_resets += l.resets_received + l.resets_sent;
        p.summary_timeouts += l.timeouts;
        break;
    }
    case ReportEventKind::audit_process: {
        // Snapshots of the same sockets: the largest, not the sum.
        ProcessReport &p = procs_[proc_id(host, l)];
        p.audit_sockets = std::max(p.audit_sockets, l.sockets);
        p.audit_without_ka = std::max(p.audit_without_ka, l.without_keepalive);
        break;
    }
    case ReportEventKind::lost:
        h.lost += l.lost;
        break;
    case ReportEventKind::session_start:
        ++h.sessions;
        break;
    case ReportEventKind::session_summary:
        break;
    case ReportEventKind::report_output:
        break;
    }
}

// Both ends of a connection carry mirrored 4-tuples. Sorting every socket by
// its unordered endpoint pair puts the two ends next to each other, on one
// host or on two, without a second index during the streaming phase.
void Aggregator::resolve_pairs(ReportData &out) {
    // 16 bytes per socket: the unordered endpoint pair, then the side (top
    // bit: 0 when the local endpoint is the lower one) and the index.
    struct Ref {
        std::uint32_t lo_addr, hi_addr;
        std::uint16_t lo_port, hi_port;
        std::uint32_t side_idx;
        std::uint32_t side() const { return side_idx >> 31; }
        std::uint32_t idx() const { return side_idx & 0x7fffffffu; }
    };
    static_assert(sizeof(Ref) == 16);
    std::vector<Ref> refs;
    refs.reserve(conns_.size());
    for (std::uint32_t i = 0; i < conns_.size(); ++i) {
        const ConnKey &k = conns_.key(i);
        const auto e1 = std::make_pair(k.laddr, k.lport);
        const auto e2 = std::make_pair(k.raddr, k.rport);
        if (e1 == e2) continue;
        if (e1 < e2)
            refs.push_back({k.laddr, k.raddr, k.lport, k.rport, i});
        else
            refs.push_back({k.raddr, k.laddr, k.rport, k.lport, 0x80000000u | i});
    }
    auto tuple = [](const Ref &r) {
        return std::make_tuple(r.lo_addr, r.hi_addr, r.lo_port, r.hi_port);
    };
    std::sort(refs.begin(), refs.end(), [&](const Ref &a, const Ref &b) {
        return std::make_pair(tuple(a), a.side()) < std::make_pair(tuple(b), b.side());
    });

    auto side_of = [this](std::uint32_t idx) {
        const Conn &c = conns_[idx];
        const ConnKey &k = conns_.key(idx);
        PairSide s;
        s.host = k.host;
        s.netns = k.netns;
        s.proc = c.proc;
        s.local.addr = addrs_.key(k.laddr);
        s.local.port = k.lport;
        s.remote.addr = addrs_.key(k.raddr);
        s.remote.port = k.rport;
        s.ka = c.ka;
        s.ka_idle_s = c.ka_idle_s;
        s.death = (c.flags & F_DIED) ? c.death : DeathKind::none;
        return s;
    };

    PairCounts &pc = out.pair_counts;
    for (std::size_t g = 0; g < refs.size();) {
        std::size_t end = g + 1;
        while (end < refs.size() && tuple(refs[end]) == tuple(refs[g]))
            ++end;
        std::size_t mid = g;
        while (mid < end && refs[mid].side() == 0)
            ++mid;
        const std::size_t n0 = mid - g, n1 = end - mid;
        if (n0 && n1) {
            // Received resets of unknown origin: if the far end's host logged
            // the connection and no RST from it, something in between sent it.
            for (std::size_t i = g; i < end; ++i) {
                Conn &c = conns_[refs[i].idx()];
                if (!(c.flags & F_PENDING)) continue;
                const bool left = i < mid;
                bool peer_other_host = false, peer_sent = false;
                for (std::size_t j = left ? mid : g; j < (left ? end : mid); ++j) {
                    const Conn &p = conns_[refs[j].idx()];
                    peer_other_host |= p.host != c.host;
                    peer_sent |= (p.flags & F_SENT_RESET) != 0;
                }
                if (peer_other_host && !peer_sent) {
                    c.flags &= std::uint8_t(~F_PENDING);
                    middlebox_death(c.host, c.pending_proc, c.flags & F_PENDING_IDLE,
                                    c.pending_idle_ms, c.ka, c.ka_idle_s, true);
                } else if (peer_sent) {
                    c.flags &= std::uint8_t(~F_PENDING); // the peer application reset it
                }
            }
            if (n0 == 1 && n1 == 1) {
                PairReport pr{side_of(refs[g].idx()), side_of(refs[mid].idx()),
                              PairStatus::unknown};
                const KaState a = pr.a.ka, b = pr.b.ka;
                if (a == KaState::unknown || b == KaState::unknown)
                    pr.status = PairStatus::unknown;
                else if (a == KaState::on && b == KaState::on)
                    pr.status = PairStatus::both;
                else if (a == KaState::off && b == KaState::off)
                    pr.status = PairStatus::neither;
                else
                    pr.status = PairStatus::one_side;
                ++pc.total;
                switch (pr.status) {
                case PairStatus::both:
                    ++pc.both;
                    break;
                case PairStatus::neither:
                    ++pc.neither;
                    break;
                case PairStatus::one_side:
                    ++pc.one_side;
                    break;
                case PairStatus::unknown:
                    ++pc.unknown;
                    break;
                }
                const bool relevant = pr.status == PairStatus::one_side ||
                                      pr.a.death != DeathKind::none ||
                                      pr.b.death != DeathKind::none;
                if (relevant) {
                    if (out.pairs.size() < kMaxPairLines) {
                        out.pairs.push_back(pr);
                        ++pc.emitted;
                    } else {
                        ++pc.omitted;
                    }
                }
            } else {
                ++pc.ambiguous;
            }
        }
        g = end;
    }
    for (std::uint32_t i = 0; i < conns_.size(); ++i)
        if (conns_[i].flags & F_PENDING) ++out.unresolved_resets;
}

ReportData Aggregator::finish() {
    // Pairs first: resolving origins adds middlebox deaths to data_.
    resolve_pairs(data_);
    ReportData out = std::move(data_);
    data_ = ReportData{};
    for (std::uint32_t i = 0; i < conns_.size(); ++i)
        end_lifetime(conns_[i]);

    out.hosts = std::move(hosts_);
    out.processes = std::move(procs_);
    out.worst_first.resize(out.processes.size());
    for (std::uint32_t i = 0; i < out.worst_first.size(); ++i)
        out.worst_first[i] = i;
    const auto &P = out.processes;
    const auto &H = out.hosts;
    auto idle_deaths = [](const ProcessReport &p) {
        return p.resets[std::size_t(Verdict::keepalive_disabled)] +
               p.resets[std::size_t(Verdict::keepalive_too_slow)] +
               p.timeouts[std::size_t(Verdict::keepalive_disabled)] +
               p.timeouts[std::size_t(Verdict::keepalive_too_slow)];
    };
    // Worst first: deaths a middlebox caused, then deaths the verdict ties to
    // idle keepalive trouble, then all deaths, then exposure.
    std::sort(out.worst_first.begin(), out.worst_first.end(),
              [&](std::uint32_t x, std::uint32_t y) {
                  const ProcessReport &a = P[x], &b = P[y];
                  auto key = [&](const ProcessReport &p) {
                      return std::make_tuple(p.mb_deaths, idle_deaths(p),
                                             p.resets_total() + p.timeouts_total(),
                                             p.without_keepalive(), p.connections());
                  };
                  auto ka = key(a), kb = key(b);
                  if (ka != kb) return ka > kb;
                  if (a.host != b.host) return H[a.host].name < H[b.host].name;
                  return std::make_pair(a.pid, a.comm) < std::make_pair(b.pid, b.comm);
              });
    out.hosts_order.resize(out.hosts.size());
    for (std::uint32_t i = 0; i < out.hosts_order.size(); ++i)
        out.hosts_order[i] = i;
    std::sort(out.hosts_order.begin(), out.hosts_order.end(),
              [&](std::uint32_t x, std::uint32_t y) {
                  const HostReport &a = H[x], &b = H[y];
                  auto ka = std::make_tuple(a.mb_deaths, a.resets + a.timeouts);
                  auto kb = std::make_tuple(b.mb_deaths, b.resets + b.timeouts);
                  if (ka != kb) return ka > kb;
                  return a.name < b.name;
              });
    return out;
}

} // namespace rstwatch
