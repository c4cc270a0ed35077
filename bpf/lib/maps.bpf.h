/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Maps and read-only configuration shared by the trace programs. The trace
 * object is linked from several .bpf.c files (bpftool gen object); maps.bpf.c
 * defines everything here (RW_MAPS_DEFINE), the others see extern declarations
 * that the static linker resolves to the same map.
 */
#ifndef RSTWATCH_MAPS_BPF_H
#define RSTWATCH_MAPS_BPF_H

#include "rstwatch/records.h"

#ifdef RW_MAPS_DEFINE
#define RW_EXTERN
#define RW_INIT(v) = v
#else
#define RW_EXTERN extern
#define RW_INIT(v)
#endif

/* ---- Configuration, set by the loader between open and load ---- */

/* RW_EMIT_* bits: which record kinds go to the ring buffer. */
RW_EXTERN const volatile __u32 cfg_emit RW_INIT(RW_EMIT_RESET | RW_EMIT_TIMEOUT);
/* Wake the consumer only when this much data waits; below it, userspace
 * drains on its own short timer. A wakeup costs an irq_work (a self-IPI, very
 * expensive under virtualisation) on the event's hot path. */
RW_EXTERN const volatile __u32 cfg_wakeup_bytes RW_INIT(1 << 20);
/* cgroup/setsockopt programs may call bpf_get_current_pid_tgid / _uid_gid /
 * _comm (6.1 can, 5.10 cannot: "unknown func"). The loader probes; when false
 * the verifier prunes those calls and the socket's recorded owner stands in
 * for the caller. */
RW_EXTERN const volatile bool cfg_sockopt_caller RW_INIT(true);
/* CONFIG_HZ as the loader knows it; a safety net should the CONFIG_HZ
 * __kconfig extern resolve to 0 (without a readable kernel config the loader
 * hands libbpf the measured value as kconfig). */
RW_EXTERN const volatile __u32 cfg_hz_fallback RW_INIT(250);

/* In-kernel filters (0 / empty = off). Decided before the ring buffer. */
RW_EXTERN const volatile __u32 cfg_filter_pid RW_INIT(0);
RW_EXTERN const volatile __u16 cfg_filter_port RW_INIT(0);
RW_EXTERN const volatile __u32 cfg_filter_netns RW_INIT(0);
RW_EXTERN const volatile __u32 cfg_filter_min_idle_ms RW_INIT(0);
RW_EXTERN const volatile bool cfg_filter_comm_on RW_INIT(false);
RW_EXTERN const volatile char cfg_filter_comm[RW_COMM_LEN] RW_INIT({});
/* --cgroup: the cgroup's id and its level in the v2 hierarchy (-1 = off). */
RW_EXTERN const volatile __u64 cfg_filter_cgroup_id RW_INIT(0);
RW_EXTERN const volatile __s32 cfg_filter_cgroup_level RW_INIT(-1);

/* ---- Maps ---- */

/* Records to userspace. Size set by the loader (--ringbuf-size). */
RW_EXTERN struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 4 << 20);
} rw_events SEC(".maps");

/* enum rw_counter, per CPU so the hot path never contends. */
RW_EXTERN struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, RW_CNT_MAX);
    __type(key, __u32);
    __type(value, __u64);
} rw_counters SEC(".maps");

/* Owner and history of live TCP sockets, keyed by socket address. Entries are
 * created when a connection starts (or by the start-up scan) and deleted when it
 * closes; LRU only as a safety net. */
RW_EXTERN struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 65536);
    __type(key, __u64);
    __type(value, struct rw_sock_info);
} rw_socks SEC(".maps");

/* Owner of each listening port, so accepted connections get an owner even
 * though they are established in softirq context. */
RW_EXTERN struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 4096);
    __type(key, struct rw_listener_key);
    __type(value, struct rw_owner);
} rw_listeners SEC(".maps");

/* Live connections by 4-tuple: tells whether the far end of a connection is
 * also a socket on this host (reset origin). */
RW_EXTERN struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 65536);
    __type(key, struct rw_tuple_key);
    __type(value, __u32);
} rw_tuples SEC(".maps");

/* Per-process counters for the end-of-session summary. */
RW_EXTERN struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 8192);
    __type(key, __u32);
    __type(value, struct rw_proc_stats);
} rw_proc_stats SEC(".maps");

/* Sockets that closed a moment ago, with their history: a reset sent right
 * after the close (SO_LINGER 0, close with unread data) still finds its owner
 * after the socket left rw_socks. tcp_send_active_reset traces after
 * transmitting, and on loopback or veth the peer's own close runs nested in that
 * transmit, and the closing task may be preempted and migrate: hence a small
 * LRU keyed by socket rather than a per-CPU slot. Entries count only for
 * RW_CLOSING_VALID_NS after the close. */
#define RW_CLOSING_VALID_NS 100000000ULL
struct rw_closing {
    __u64 ts_ns;
    struct rw_sock_info info;
};
RW_EXTERN struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 4096);
    __type(key, __u64);
    __type(value, struct rw_closing);
} rw_closing SEC(".maps");

/* setsockopt arguments between sys_enter and sys_exit (only with --events keepalive). */
struct rw_pending_sockopt {
    __s32 fd;
    __s32 level;
    __s32 optname;
    __s32 value;
    __u32 optlen;
    __u32 _pad;
};
RW_EXTERN struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 4096);
    __type(key, __u64);
    __type(value, struct rw_pending_sockopt);
} rw_pending_sockopt SEC(".maps");

/* ---- Iterator mode (.bss: written by userspace before each run) ---- */
RW_EXTERN bool iter_seed RW_INIT(false);     /* fill rw_socks / rw_listeners / rw_tuples */
RW_EXTERN bool iter_snapshot RW_INIT(false); /* write struct rw_snapshot to the seq file */

#endif /* RSTWATCH_MAPS_BPF_H */
