// rw_encoder_bench: events per second through the userspace half of the data
// path on one core: ring-buffer bytes -> decode -> enrich (cgroup lookup) ->
// diagnose -> format (JSON or text) -> a sink that discards. The same
// TracePipeline rstwatch runs, fed synthetic records shaped like the BPF side's.
//
//   build/bench/rw_encoder_bench [--benchmark_filter=...] [--benchmark_min_time=...]
//
// items_per_second is events per second; bytes_per_second is output bytes.
#include <benchmark/benchmark.h>

#include <cstring>

#include "../tests/unit/fixtures.hpp"
#include "util/clock.hpp"
#include "util/cgroup_fs.hpp"
#include "output/format.hpp"
#include "trace/pipeline.hpp"
#include "output/sink.hpp"

using namespace rstwatch;

namespace {

class NullSink : public Sink {
  public:
    explicit NullSink(std::uint64_t &bytes) : bytes_(bytes) {}
    WriteResult write(std::string_view lines) override {
        bytes_ += lines.size();
        return {WriteStatus::ok, lines.size()};
    }

  private:
    std::uint64_t &bytes_;
};

enum class Fmt { json, text };

// Everything a TracePipeline needs, as in `rstwatch trace`.
struct Rig {
    explicit Rig(Fmt fmt, std::uint32_t emit)
        : formatter(fmt == Fmt::json ? make_json_formatter("bench-host")
                                     : make_text_formatter(false)),
          out(std::make_unique<NullSink>(bytes)),
          pipe(PipelineConfig{DiagnoseConfig::make(std::nullopt, std::nullopt), std::nullopt, emit,
                              0},
               *formatter, out, cgroups, kernel, clock) {}

    std::uint64_t bytes = 0;
    KernelFacts kernel = facts();
    WallClock clock;
    CgroupResolver cgroups;
    std::unique_ptr<Formatter> formatter;
    Output out;
    TracePipeline pipe;

    // The names this kernel's BTF gives sk_rst_reason (6.18), in value order.
    static KernelFacts facts() {
        KernelFacts k;
        k.rst_reason_arg = true;
        k.rst_reason_names = {"NOT_SPECIFIED",    "NO_SOCKET",       "TCP_INVALID_ACK_SEQUENCE",
                              "TCP_RFC7323_PAWS", "TCP_TOO_OLD_ACK", "TCP_ACK_UNSENT_DATA",
                              "TCP_FLAGS",        "TCP_OLD_ACK",     "TCP_ABORT_ON_DATA"};
        return k;
    }
    // The cgroup a real owner would have: the v2 root ("/") when mounted.
    std::uint64_t root_cgroup_id() const {
        return cgroups.root().empty() ? 0 : CgroupResolver::id_of(cgroups.root());
    }
};

// Feeds `per_iter` records per iteration (made by `make(i)`), flushing the
// output every 256 events as a ring-buffer drain would.
template <class Make>
void run(benchmark::State &state, Rig &rig, std::size_t events_per_iter, Make make) {
    std::uint64_t i = 0, events = 0;
    for (auto _ : state) {
        make(i++);
        events += events_per_iter;
        if ((i & 255) == 0) rig.out.flush();
    }
    rig.out.flush();
    state.SetItemsProcessed(std::int64_t(events));
    state.SetBytesProcessed(std::int64_t(rig.bytes));
    state.counters["bytes_per_event"] = events ? double(rig.bytes) / double(events) : 0;
}

// A connect to a closed port on loopback, the storm's common case: the sent
// reset (no socket, reason NO_SOCKET) and the connecting socket's received
// reset, paired by the origin tracker. Two events per iteration.
void BM_ResetPairNoSocket(benchmark::State &state, Fmt fmt) {
    Rig rig(fmt, RW_EMIT_RESET);
    rw_reset sent = fixtures::reset(RW_DIR_SENT);
    sent.flags = RW_F_NO_SOCKET;
    sent.owner = {};
    sent.kernel_reason = 1;
    sent.ep.state = 7; // CLOSE
    fixtures::set_v4(sent.ep.local_addr, "127.0.0.1");
    fixtures::set_v4(sent.ep.remote_addr, "127.0.0.1");
    sent.ep.local_port = 4000;
    rw_reset recv = fixtures::reset(RW_DIR_RECEIVED);
    recv.owner.cgroup_id = rig.root_cgroup_id();
    recv.ep.state = 2; // SYN_SENT
    recv.flags = RW_F_FULLSOCK | RW_F_AGE_KNOWN;
    fixtures::set_v4(recv.ep.local_addr, "127.0.0.1");
    fixtures::set_v4(recv.ep.remote_addr, "127.0.0.1");
    recv.ep.remote_port = 4000;
    run(state, rig, 2, [&](std::uint64_t i) {
        std::uint16_t port = std::uint16_t(32768 + (i % 28000));
        sent.ep.remote_port = port;
        recv.ep.local_port = port;
        sent.hdr.ts_ns += 1000;
        recv.hdr.ts_ns = sent.hdr.ts_ns + 500;
        rig.pipe.on_sample(&sent, sizeof(sent));
        rig.pipe.on_sample(&recv, sizeof(recv));
    });
}

// An application aborting its own established connection (SO_LINGER 0): a
// sent reset on an owned socket, with keepalive state and timers.
void BM_ResetSentEstablished(benchmark::State &state, Fmt fmt) {
    Rig rig(fmt, RW_EMIT_RESET);
    rw_reset r = fixtures::reset(RW_DIR_SENT);
    r.owner.cgroup_id = rig.root_cgroup_id();
    r.flags = RW_F_FULLSOCK | RW_F_TIMERS | RW_F_AGE_KNOWN | RW_F_ACTIVE;
    r.kernel_reason = 8;
    r.tm.age_ms = 12000;
    run(state, rig, 1, [&](std::uint64_t i) {
        r.ep.local_port = std::uint16_t(32768 + (i % 28000));
        r.hdr.ts_ns += 1000;
        rig.pipe.on_sample(&r, sizeof(r));
    });
}

// The incident: a received reset on an idle connection without keepalive,
// from a remote peer (no local sent reset pairs with it), decided after the
// pairing wait, here forced at once.
void BM_ResetReceivedIdle(benchmark::State &state, Fmt fmt) {
    Rig rig(fmt, RW_EMIT_RESET);
    rw_reset r = fixtures::reset(RW_DIR_RECEIVED);
    r.owner.cgroup_id = rig.root_cgroup_id();
    run(state, rig, 1, [&](std::uint64_t i) {
        r.ep.local_port = std::uint16_t(32768 + (i % 28000));
        r.hdr.ts_ns += 1000;
        rig.pipe.on_sample(&r, sizeof(r));
        rig.pipe.flush_pending(0, /*force=*/true);
    });
}

// Storms with peers off this host, 50,000 resets/s of event time, drained
// every 50 ms as `rstwatch trace` does. Nothing pairs: sent resets wait in
// the origin tracker for 5 s, received ones 100 ms for a local peer.
//  - sent:  the host answers a port scan / SYN flood from many remote
//           addresses (NO_SOCKET): more distinct tuples than the tracker holds.
//  - mixed: a middlebox resets many connections (received) while the
//           application aborts others (sent).
void BM_RemoteStorm(benchmark::State &state, Fmt fmt, bool mixed) {
    Rig rig(fmt, RW_EMIT_RESET);
    rw_reset sent = fixtures::reset(RW_DIR_SENT);
    sent.flags = RW_F_NO_SOCKET;
    sent.owner = {};
    sent.kernel_reason = 1;
    rw_reset recv = fixtures::reset(RW_DIR_RECEIVED);
    recv.owner.cgroup_id = rig.root_cgroup_id();
    const std::uint64_t step = 20'000, drain = 50'000'000;
    std::uint64_t ts = 1'000'000'000, next_drain = ts + drain;
    run(state, rig, mixed ? 2 : 1, [&](std::uint64_t i) {
        ts += step;
        // 2^20 distinct remote endpoints: never a repeated tuple in 5 s.
        std::uint32_t peer = 0x0a000000u | std::uint32_t(i & 0xfffff);
        std::memcpy(sent.ep.remote_addr, &peer, 4);
        sent.ep.remote_port = std::uint16_t(1024 + (i % 60000));
        sent.hdr.ts_ns = ts;
        rig.pipe.on_sample(&sent, sizeof(sent));
        if (mixed) {
            std::memcpy(recv.ep.remote_addr, &peer, 4);
            recv.ep.local_port = std::uint16_t(32768 + (i % 28000));
            recv.hdr.ts_ns = ts + step / 2;
            rig.pipe.on_sample(&recv, sizeof(recv));
        }
        if (ts >= next_drain) {
            rig.pipe.flush_pending(ts, false);
            next_drain = ts + drain;
        }
    });
}

void BM_Timeout(benchmark::State &state, Fmt fmt) {
    Rig rig(fmt, RW_EMIT_TIMEOUT);
    rw_close c = fixtures::close_rec(RW_CAUSE_KEEPALIVE);
    c.owner.cgroup_id = rig.root_cgroup_id();
    run(state, rig, 1, [&](std::uint64_t i) {
        c.ep.local_port = std::uint16_t(32768 + (i % 28000));
        c.hdr.ts_ns += 1000;
        rig.pipe.on_sample(&c, sizeof(c));
    });
}

void BM_ConnectionClosed(benchmark::State &state, Fmt fmt) {
    Rig rig(fmt, RW_EMIT_CONNECTION);
    rw_close c = fixtures::close_rec();
    c.owner.cgroup_id = rig.root_cgroup_id();
    c.opts = RW_OPT_SO_KEEPALIVE | RW_OPT_TCP_KEEPIDLE;
    run(state, rig, 1, [&](std::uint64_t i) {
        c.ep.local_port = std::uint16_t(32768 + (i % 28000));
        c.hdr.ts_ns += 1000;
        rig.pipe.on_sample(&c, sizeof(c));
    });
}

void BM_KeepaliveSet(benchmark::State &state, Fmt fmt) {
    Rig rig(fmt, RW_EMIT_KEEPALIVE);
    rw_sockopt so{};
    so.hdr.type = RW_REC_SOCKOPT;
    so.hdr.size = sizeof(so);
    so.hdr.ts_ns = 1'000'000'000;
    so.owner = fixtures::owner(7, "app", RW_OWNER_CURRENT);
    so.owner.cgroup_id = rig.root_cgroup_id();
    so.ep = fixtures::reset().ep;
    so.fd = 3;
    so.level = 6;   // IPPROTO_TCP
    so.optname = 4; // TCP_KEEPIDLE
    so.value = 30;
    so.sock_id = 0xffff888001234000ull;
    so.netns = 4026531840u;
    run(state, rig, 1, [&](std::uint64_t i) {
        so.ep.local_port = std::uint16_t(32768 + (i % 28000));
        so.hdr.ts_ns += 1000;
        rig.pipe.on_sample(&so, sizeof(so));
    });
}

} // namespace

BENCHMARK_CAPTURE(BM_ResetPairNoSocket, json, Fmt::json);
BENCHMARK_CAPTURE(BM_ResetPairNoSocket, text, Fmt::text);
BENCHMARK_CAPTURE(BM_ResetSentEstablished, json, Fmt::json);
BENCHMARK_CAPTURE(BM_ResetSentEstablished, text, Fmt::text);
BENCHMARK_CAPTURE(BM_ResetReceivedIdle, json, Fmt::json);
BENCHMARK_CAPTURE(BM_ResetReceivedIdle, text, Fmt::text);
// Fixed iterations: past the first 65,536 events the cost per event is what
// is measured, and a regression to O(tracked resets) per event must not turn
// the smoke run into minutes.
BENCHMARK_CAPTURE(BM_RemoteStorm, sent_json, Fmt::json, false)->Iterations(300000);
BENCHMARK_CAPTURE(BM_RemoteStorm, mixed_json, Fmt::json, true)->Iterations(300000);
BENCHMARK_CAPTURE(BM_Timeout, json, Fmt::json);
BENCHMARK_CAPTURE(BM_Timeout, text, Fmt::text);
BENCHMARK_CAPTURE(BM_ConnectionClosed, json, Fmt::json);
BENCHMARK_CAPTURE(BM_ConnectionClosed, text, Fmt::text);
BENCHMARK_CAPTURE(BM_KeepaliveSet, json, Fmt::json);
BENCHMARK_CAPTURE(BM_KeepaliveSet, text, Fmt::text);

BENCHMARK_MAIN();
