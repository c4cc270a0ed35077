#include "output/json_fields.hpp"

#include <netinet/in.h>

#include "util/net.hpp"

namespace rstwatch::json_fields {

JsonWriter Envelope::begin(std::string &out, std::string_view event, std::int64_t ts_ns) {
    JsonWriter w(out);
    w.begin_object();
    w.field_num("v", kSchemaVersion).field("event", event);
    scratch_.assign(1, '"');
    ts_.append(scratch_, ts_ns);
    scratch_.push_back('"');
    w.key("ts").raw(scratch_);
    w.field("host", host_);
    return w;
}

void Envelope::end(JsonWriter &w, std::string &out) {
    w.end_object();
    out.push_back('\n');
}

std::string_view owner_source(std::uint32_t how) {
    switch (how) {
    case RW_OWNER_CONNECT:
        return "connect";
    case RW_OWNER_LISTENER:
        return "listener";
    case RW_OWNER_SEEDED:
        return "seeded";
    case RW_OWNER_SOCKOPT:
        return "sockopt";
    case RW_OWNER_CURRENT:
        return "current";
    }
    return "unknown";
}

void endpoint(JsonWriter &w, std::string_view k, const std::uint8_t addr[16], std::uint16_t port,
              std::uint16_t family) {
    char buf[INET6_ADDRSTRLEN];
    w.key(k)
        .begin_object()
        .field("addr", format_addr(addr, family, buf))
        .field_unum("port", port)
        .end_object();
}

void local_remote(JsonWriter &w, const rw_endpoints &ep) {
    w.field("family", is_ipv4(ep.local_addr, ep.remote_addr, ep.family) ? "ipv4" : "ipv6");
    endpoint(w, "local", ep.local_addr, ep.local_port, ep.family);
    endpoint(w, "remote", ep.remote_addr, ep.remote_port, ep.family);
}

void connection(JsonWriter &w, const rw_endpoints &ep, std::uint32_t netns) {
    w.field("state", tcp_state_name(ep.state));
    local_remote(w, ep);
    w.field_unum("netns", netns);
}

void cgroup(JsonWriter &w, const CgroupInfo *cg) {
    if (!cg) {
        w.field_null("cgroup").field_null("container_id").field_null("pod_uid");
        return;
    }
    w.field("cgroup", cg->path);
    if (cg->ids.container_id.empty())
        w.field_null("container_id");
    else
        w.field("container_id", cg->ids.container_id);
    if (cg->ids.pod_uid.empty())
        w.field_null("pod_uid");
    else
        w.field("pod_uid", cg->ids.pod_uid);
}

void owner(JsonWriter &w, const rw_owner &o, const CgroupInfo *cg) {
    if (o.pid) {
        w.key("process")
            .begin_object()
            .field_unum("pid", o.pid)
            .field("comm", std::string_view(o.comm));
        w.field_unum("uid", o.uid).end_object();
        w.field("owner_source", owner_source(o.how));
    } else {
        w.field_null("process").field_null("owner_source");
    }
    if (o.cgroup_id)
        w.field_unum("cgroup_id", o.cgroup_id);
    else
        w.field_null("cgroup_id");
    cgroup(w, cg);
}

void keepalive(JsonWriter &w, const rw_keepalive &ka) {
    w.key("keepalive").begin_object();
    w.field_bool("enabled", ka.enabled).field_unum("idle_s", ka.idle_s);
    w.field_unum("interval_s", ka.interval_s).field_unum("probes", ka.probes);
    w.field("source", (ka.from_socket & RW_KA_IDLE_SOCKET) ? "socket" : "sysctl");
    if (ka.user_timeout_ms)
        w.field_unum("user_timeout_ms", ka.user_timeout_ms);
    else
        w.field_null("user_timeout_ms");
    w.end_object();
}

} // namespace rstwatch::json_fields
