// Hand-made rstwatch NDJSON for the `rstwatch report` tests: the same field
// names and order as format_json.cpp writes, with only what a test varies as
// parameters.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <zlib.h>

#include "util/clock.hpp"
#include "report/report.hpp"

namespace rf {

struct Ep {
    std::string addr;
    int port;
};

struct Proc {
    std::uint32_t pid = 0; // 0: "process": null
    std::string comm;
};

// Keepalive as a socket reports it; nullopt: "keepalive": null.
struct Ka {
    bool on = false;
    unsigned idle_s = 7200;
};

// 2026-01-01T00:00:00Z plus `ms`.
inline std::string ts(std::int64_t ms) {
    std::string s;
    rstwatch::Rfc3339 r;
    r.append(s, 1'767'225'600'000'000'000LL + ms * 1'000'000);
    return s;
}

inline std::string head(const char *event, const std::string &host, std::int64_t ms) {
    return std::string("{\"v\":1,\"event\":\"") + event + "\",\"ts\":\"" + ts(ms) +
           "\",\"host\":\"" + host + "\"";
}

inline std::string ep(const char *k, const Ep &e) {
    return std::string(",\"") + k + "\":{\"addr\":\"" + e.addr +
           "\",\"port\":" + std::to_string(e.port) + "}";
}

inline std::string proc(const Proc &p) {
    if (!p.pid) return ",\"process\":null,\"owner_source\":null,\"cgroup_id\":null,\"cgroup\":null";
    return ",\"process\":{\"pid\":" + std::to_string(p.pid) + ",\"comm\":\"" + p.comm +
           "\",\"uid\":1000},\"owner_source\":\"connect\",\"cgroup_id\":77,\"cgroup\":\"/"
           "system.slice/" +
           p.comm + ".service\"";
}

inline std::string ka(const std::optional<Ka> &k) {
    if (!k) return ",\"keepalive\":null";
    return std::string(",\"keepalive\":{\"enabled\":") + (k->on ? "true" : "false") +
           ",\"idle_s\":" + std::to_string(k->idle_s) +
           ",\"interval_s\":75,\"probes\":9,\"source\":\"sysctl\",\"user_timeout_ms\":null}";
}

inline std::string conn(const Ep &l, const Ep &r, std::uint32_t netns) {
    return ",\"state\":\"ESTABLISHED\",\"family\":\"ipv4\"" + ep("local", l) + ep("remote", r) +
           ",\"netns\":" + std::to_string(netns);
}

inline std::string idle(std::int64_t ms) {
    return ",\"idle_ms\":" + (ms < 0 ? std::string("null") : std::to_string(ms));
}

struct Reset {
    std::string host = "h1";
    std::int64_t at_ms = 0;
    Ep local{"10.0.0.1", 40000}, remote{"10.0.0.2", 5432};
    Proc process{4242, "client"};
    std::optional<Ka> keepalive = Ka{};
    std::int64_t idle_ms = 7000; // <0: null
    std::string verdict = "keepalive_disabled";
    std::string origin = "middlebox";
    bool sent = false;
    std::uint32_t netns = 4026531840u;
};

inline std::string reset(const Reset &r) {
    return head("tcp_reset", r.host, r.at_ms) + ",\"direction\":\"" +
           (r.sent ? "sent" : "received") + "\"" + conn(r.local, r.remote, r.netns) +
           proc(r.process) + ",\"container_id\":null,\"pod_uid\":null" + ka(r.keepalive) +
           idle(r.idle_ms) + ",\"since_last_send_ms\":0,\"age_ms\":null,\"kernel_reason\":null" +
           ",\"verdict\":\"" + r.verdict + "\",\"explanation\":\"x\",\"origin\":\"" + r.origin +
           "\",\"conntrack_timeout_s\":null}\n";
}

struct Timeout {
    std::string host = "h1";
    std::int64_t at_ms = 0;
    Ep local{"10.0.0.1", 40000}, remote{"10.0.0.2", 5432};
    Proc process{4242, "client"};
    Ka keepalive{};
    std::int64_t idle_ms = 7000;
    std::string verdict = "keepalive_disabled";
    std::uint32_t netns = 4026531840u;
};

inline std::string timeout(const Timeout &t) {
    return head("tcp_timeout", t.host, t.at_ms) + ",\"cause\":\"retransmit\"" +
           conn(t.local, t.remote, t.netns) + proc(t.process) +
           ",\"container_id\":null,\"pod_uid\":null" + ka(t.keepalive) + idle(t.idle_ms) +
           ",\"unanswered_ms\":3000,\"retransmits\":3,\"probes\":0,\"age_ms\":null,\"error\":-110" +
           ",\"verdict\":\"" + t.verdict +
           "\",\"explanation\":\"x\",\"conntrack_timeout_s\":null}\n";
}

struct Sock {
    std::string host = "h1";
    std::int64_t at_ms = 0;
    Ep local{"10.0.0.1", 40000}, remote{"10.0.0.2", 5432};
    Proc process{4242, "client"};
    Ka keepalive{};
    std::uint32_t netns = 4026531840u;
};

inline std::string closed(const Sock &s) {
    return head("connection_closed", s.host, s.at_ms) + conn(s.local, s.remote, s.netns) +
           proc(s.process) + ",\"container_id\":null,\"pod_uid\":null,\"duration_ms\":1000" +
           ",\"keepalive_ever_enabled\":" + (s.keepalive.on ? "true" : "false") + ka(s.keepalive) +
           ",\"keepalive_options_set\":[],\"resets_received\":0,\"resets_sent\":0,\"error\":0}\n";
}

inline std::string audit(const Sock &s) {
    return head("audit_socket", s.host, s.at_ms) + proc(s.process) +
           ",\"container_id\":null,\"pod_uid\":null,\"fd\":5,\"shared\":false" +
           conn(s.local, s.remote, s.netns) + ka(s.keepalive) +
           ",\"keepalive_ever_enabled\":false,\"idle_ms\":100,\"since_last_send_ms\":100" +
           ",\"age_ms\":null,\"risk\":null,\"conntrack_timeout_s\":null}\n";
}

inline std::string summary(const std::string &host, std::int64_t at_ms, const Proc &p,
                           unsigned conns, unsigned without) {
    return head("process_summary", host, at_ms) + ",\"process\":{\"pid\":" + std::to_string(p.pid) +
           ",\"comm\":\"" + p.comm +
           "\",\"uid\":0},\"cgroup\":null,\"container_id\":null,\"pod_uid\":null" +
           ",\"connections\":" + std::to_string(conns) +
           ",\"open_connections\":0,\"without_keepalive\":" + std::to_string(without) +
           ",\"resets_received\":0,\"resets_sent\":0,\"timeouts\":0,\"keepalive_options_set\":[]}"
           "\n";
}

inline std::string gzip(const std::string &data) {
    z_stream zs{};
    deflateInit2(&zs, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
    std::string out(deflateBound(&zs, uLong(data.size())) + 64, '\0');
    zs.next_in = reinterpret_cast<Bytef *>(const_cast<char *>(data.data()));
    zs.avail_in = uInt(data.size());
    zs.next_out = reinterpret_cast<Bytef *>(out.data());
    zs.avail_out = uInt(out.size());
    deflate(&zs, Z_FINISH);
    out.resize(zs.total_out);
    deflateEnd(&zs);
    return out;
}

inline rstwatch::ReportResult run(const std::string &text,
                                  std::optional<std::chrono::milliseconds> configured = {},
                                  std::size_t buffer = 4u << 20) {
    rstwatch::ReportEngine engine(configured);
    auto reader = rstwatch::LineReader::from_memory(text, "test.ndjson", buffer);
    engine.read(*reader);
    return engine.finish();
}

} // namespace rf
