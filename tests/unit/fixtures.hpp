// Synthetic records for unit tests, shaped like the BPF side produces them.
#pragma once

#include <arpa/inet.h>
#include <cstring>
#include <string>
#include <sys/socket.h>

#include "rstwatch/records.h"

namespace fixtures {

inline void set_v4(std::uint8_t dst[16], const char *addr) {
    inet_pton(AF_INET, addr, dst);
}

inline rw_owner owner(std::uint32_t pid, const char *comm, std::uint32_t how = RW_OWNER_CONNECT) {
    rw_owner o{};
    o.pid = pid;
    o.uid = 1000;
    o.cgroup_id = 0;
    std::strncpy(o.comm, comm, sizeof(o.comm) - 1);
    o.how = how;
    return o;
}

inline rw_reset reset(std::uint8_t direction = RW_DIR_RECEIVED) {
    rw_reset r{};
    r.hdr.type = RW_REC_RESET;
    r.hdr.size = sizeof(r);
    r.hdr.ts_ns = 1'000'000'000;
    r.ep.family = AF_INET;
    r.ep.state = 1; // ESTABLISHED
    set_v4(r.ep.local_addr, "10.0.1.2");
    set_v4(r.ep.remote_addr, "10.0.2.2");
    r.ep.local_port = 40000;
    r.ep.remote_port = 5000;
    r.owner = owner(4242, "client");
    r.ka.idle_s = 7200;
    r.ka.interval_s = 75;
    r.ka.probes = 9;
    r.tm.idle_ms = 7000;
    r.tm.since_send_ms = 0;
    r.tm.netns = 4026531840u;
    r.sock_id = 0xffff888001234000ull;
    r.kernel_reason = -1;
    r.flags = RW_F_FULLSOCK | RW_F_TIMERS;
    r.direction = direction;
    return r;
}

inline rw_close close_rec(std::uint8_t cause = RW_CAUSE_NONE) {
    rw_close c{};
    c.hdr.type = RW_REC_CLOSE;
    c.hdr.size = sizeof(c);
    c.hdr.ts_ns = 2'000'000'000;
    c.ep.family = AF_INET;
    c.ep.state = 1;
    set_v4(c.ep.local_addr, "10.0.1.2");
    set_v4(c.ep.remote_addr, "10.0.2.2");
    c.ep.local_port = 40000;
    c.ep.remote_port = 5000;
    c.owner = owner(4242, "client");
    c.ka.idle_s = 7200;
    c.ka.interval_s = 75;
    c.ka.probes = 9;
    c.tm.idle_ms = 5000;
    c.tm.age_ms = 9000;
    c.flags = RW_F_FULLSOCK | RW_F_TIMERS | RW_F_ESTABLISHED | RW_F_AGE_KNOWN;
    c.cause = cause;
    c.sk_err = cause ? 110 : 0;
    c.retransmits = cause ? 3 : 0;
    c.unanswered_ms = cause ? 3000 : 0;
    return c;
}

inline rw_snapshot snapshot(std::uint32_t pid, const char *comm, std::uint64_t sock_id, int fd) {
    rw_snapshot s{};
    s.hdr.type = RW_REC_SNAPSHOT;
    s.hdr.size = sizeof(s);
    s.ep.family = AF_INET;
    s.ep.state = 1;
    set_v4(s.ep.local_addr, "127.0.0.1");
    set_v4(s.ep.remote_addr, "127.0.0.1");
    s.ep.local_port = 30000 + std::uint16_t(fd);
    s.ep.remote_port = 8080;
    s.owner = owner(pid, comm, RW_OWNER_SEEDED);
    s.ka.idle_s = 7200;
    s.ka.interval_s = 75;
    s.ka.probes = 9;
    s.tm.idle_ms = 1000;
    s.tm.netns = 4026531840u;
    s.sock_id = sock_id;
    s.fd = fd;
    s.flags = RW_F_FULLSOCK | RW_F_TIMERS;
    return s;
}

} // namespace fixtures
