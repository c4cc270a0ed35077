// rstwatch report, stage 3 (end of the input): what needs all of it. The two
// ends of each connection are paired, received resets of unknown origin are
// settled from the peer host's events, and processes and hosts are ordered.
#include <algorithm>
#include <tuple>

#include "report/aggregate.hpp"

namespace rstwatch {

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

namespace {

PairStatus pair_status(KaState a, KaState b) {
    if (a == KaState::unknown || b == KaState::unknown) return PairStatus::unknown;
    if (a == KaState::on && b == KaState::on) return PairStatus::both;
    if (a == KaState::off && b == KaState::off) return PairStatus::neither;
    return PairStatus::one_side;
}

void count_pair(PairCounts &pc, PairStatus s) {
    ++pc.total;
    switch (s) {
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
}

} // namespace

PairSide Aggregator::side_of(std::uint32_t idx) {
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
}

// The two ends of one connection, both in the input: counted, and kept when
// it matters (keepalive on one end only, or a death).
void Aggregator::add_pair(ReportData &out, std::uint32_t a, std::uint32_t b) {
    PairReport pr{side_of(a), side_of(b), PairStatus::unknown};
    pr.status = pair_status(pr.a.ka, pr.b.ka);
    PairCounts &pc = out.pair_counts;
    count_pair(pc, pr.status);
    const bool relevant = pr.status == PairStatus::one_side || pr.a.death != DeathKind::none ||
                          pr.b.death != DeathKind::none;
    if (!relevant) return;
    if (out.pairs.size() < kMaxPairLines) {
        out.pairs.push_back(pr);
        ++pc.emitted;
    } else {
        ++pc.omitted;
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
                add_pair(out, refs[g].idx(), refs[mid].idx());
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
    out.groups = group_processes(out);
    return out;
}

} // namespace rstwatch
