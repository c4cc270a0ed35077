// JSON fields that several event types share (docs/events.md "Common fields"):
// one writer each, so every event spells them the same way.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "util/clock.hpp"
#include "util/cgroup_fs.hpp"
#include "event/events.hpp"
#include "util/json_writer.hpp"
#include "rstwatch/records.h"

namespace rstwatch::json_fields {

// The fields every line starts with: {"v", "event", "ts", "host", ... and the
// end of the line. Keeps the formatted second of the timestamp cached.
class Envelope {
  public:
    explicit Envelope(std::string host) : host_(std::move(host)) {}
    JsonWriter begin(std::string &out, std::string_view event, std::int64_t ts_ns);
    static void end(JsonWriter &w, std::string &out);

  private:
    std::string host_;
    Rfc3339 ts_;
    std::string scratch_;
};

std::string_view owner_source(std::uint32_t how);

// "key": {"addr", "port"}
void endpoint(JsonWriter &w, std::string_view key, const std::uint8_t addr[16], std::uint16_t port,
              std::uint16_t family);
// "family", "local", "remote" of a connection.
void local_remote(JsonWriter &w, const rw_endpoints &ep);
// "state", "family", "local", "remote", "netns".
void connection(JsonWriter &w, const rw_endpoints &ep, std::uint32_t netns);
// "cgroup", "container_id", "pod_uid" (all null without a cgroup).
void cgroup(JsonWriter &w, const CgroupInfo *cg);
// "process", "owner_source", "cgroup_id" and the cgroup fields.
void owner(JsonWriter &w, const rw_owner &o, const CgroupInfo *cg);
// "keepalive": {enabled, idle_s, interval_s, probes, source, user_timeout_ms}
void keepalive(JsonWriter &w, const rw_keepalive &ka);

} // namespace rstwatch::json_fields
