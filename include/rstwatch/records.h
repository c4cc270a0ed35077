/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The one header shared by the BPF programs and userspace: every record that
 * crosses the ring buffer (or a BPF iterator's seq file), every map key and value
 * userspace reads, and the counters. Plain C with fixed-width types and explicit
 * padding so both compilers lay the structs out identically; the static_asserts
 * at the end are checked on both sides.
 *
 * RW_ABI_VERSION is the version of THIS layout (BPF <-> userspace). It is
 * unrelated to the JSON schema version ("v" in every output line).
 */
#ifndef RSTWATCH_RECORDS_H
#define RSTWATCH_RECORDS_H

#if defined(__bpf__)
/* vmlinux.h provides the __u* types. */
#else
#include <linux/types.h>
#endif

#define RW_ABI_VERSION 2

#define RW_COMM_LEN 16
#define RW_ADDR_LEN 16

/* Record types. Values are never reused. */
enum rw_record_type {
    RW_REC_RESET = 1,    /* struct rw_reset: tcp_send_reset / tcp_receive_reset */
    RW_REC_SOCKOPT = 2,  /* struct rw_sockopt: a keepalive-related setsockopt */
    RW_REC_CLOSE = 3,    /* struct rw_close: a connection left the state machine */
    RW_REC_ENFORCE = 4,  /* struct rw_enforce: keepalive set by `rstwatch enforce` */
    RW_REC_SNAPSHOT = 5, /* struct rw_snapshot: one socket of an audit iterator run */
};

enum rw_direction {
    RW_DIR_SENT = 1,
    RW_DIR_RECEIVED = 2,
};

/* How the owner of a socket was learnt (rw_owner.how). */
enum rw_owner_source {
    RW_OWNER_NONE = 0,     /* unknown */
    RW_OWNER_CONNECT = 1,  /* the task that called connect() (CLOSE -> SYN_SENT) */
    RW_OWNER_LISTENER = 2, /* accepted: the owner of the listening socket */
    RW_OWNER_SEEDED = 3,   /* found in a task's fd table by the start-up scan */
    RW_OWNER_SOCKOPT = 4,  /* the task that last called setsockopt on it */
    RW_OWNER_CURRENT = 5,  /* the task on CPU, in process context (sockopt records) */
};

/* Bits of rw_keepalive.from_socket: the value comes from a per-socket override. */
#define RW_KA_IDLE_SOCKET (1u << 0)
#define RW_KA_INTVL_SOCKET (1u << 1)
#define RW_KA_PROBES_SOCKET (1u << 2)

/* Bits of the per-socket option mask (rw_sock_info.opts, rw_proc_stats.opts). */
#define RW_OPT_SO_KEEPALIVE (1u << 0)
#define RW_OPT_TCP_KEEPIDLE (1u << 1)
#define RW_OPT_TCP_KEEPINTVL (1u << 2)
#define RW_OPT_TCP_KEEPCNT (1u << 3)
#define RW_OPT_TCP_USER_TIMEOUT (1u << 4)
#define RW_OPT_COUNT 5

/* Record flags (rw_reset.flags, rw_close.flags, rw_snapshot.flags). */
#define RW_F_NO_SOCKET (1u << 0)   /* RST for a packet that matched no socket */
#define RW_F_FULLSOCK (1u << 1)    /* tcp_sock fields (keepalive, timers) are valid */
#define RW_F_AGE_KNOWN (1u << 2)   /* timing.age_ms is valid */
#define RW_F_PEER_LOCAL (1u << 3)  /* the mirrored 4-tuple is a socket on this host */
#define RW_F_KA_EVER (1u << 4)     /* SO_KEEPALIVE was on at some point of its life */
#define RW_F_ESTABLISHED (1u << 5) /* the connection reached ESTABLISHED */
#define RW_F_LISTENER (1u << 6)    /* snapshot: a listening socket */
#define RW_F_TIMERS (1u << 7) /* idle_ms / since_send_ms are valid (not before the handshake) */
#define RW_F_ACTIVE (1u << 8) /* sent by tcp_send_active_reset: this host aborted it */

/* Why the kernel killed a connection (rw_close.cause). */
enum rw_timeout_cause {
    RW_CAUSE_NONE = 0,
    RW_CAUSE_RETRANSMIT = 1,
    RW_CAUSE_KEEPALIVE = 2,
    RW_CAUSE_USER_TIMEOUT = 3,
};

/* What the trace programs emit (cfg_emit): event kinds the user selected with --events. */
#define RW_EMIT_RESET (1u << 0)
#define RW_EMIT_KEEPALIVE (1u << 1)
#define RW_EMIT_CONNECTION (1u << 2)
#define RW_EMIT_TIMEOUT (1u << 3)

/* Counters in the per-CPU array "counters"; userspace sums all possible CPUs. */
enum rw_counter {
    RW_CNT_LOST_RESET = 0, /* bpf_ringbuf_reserve failed, per record type */
    RW_CNT_LOST_SOCKOPT = 1,
    RW_CNT_LOST_CLOSE = 2,
    RW_CNT_LOST_ENFORCE = 3,
    RW_CNT_FILTERED = 4,       /* records dropped by the in-kernel filter */
    RW_CNT_SOCK_MAP_FULL = 5,  /* rw_socks update failed (map full) */
    RW_CNT_SNAPSHOT_SHORT = 6, /* bpf_seq_write failed in the iterator */
    RW_CNT_MAX = 8,
};

/* Common prefix of every record. */
struct rw_header {
    __u16 type; /* enum rw_record_type */
    __u16 size; /* sizeof the whole record */
    __u32 cpu;
    __u64 ts_ns; /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
};

/* Both ends of a connection, from the point of view of this host's socket. */
struct rw_endpoints {
    __u8 local_addr[RW_ADDR_LEN]; /* network order; IPv4 in the first 4 bytes */
    __u8 remote_addr[RW_ADDR_LEN];
    __u16 local_port; /* host order */
    __u16 remote_port;
    __u16 family; /* AF_INET or AF_INET6 */
    __u8 state;   /* TCP state (TCP_ESTABLISHED ...) at the event */
    __u8 _pad;
};

struct rw_owner {
    __u32 pid; /* thread-group id; 0 when unknown */
    __u32 uid;
    __u64 cgroup_id; /* cgroup v2 id of the socket (its creator's cgroup); 0 unknown */
    char comm[RW_COMM_LEN];
    __u32 how; /* enum rw_owner_source */
    __u32 _pad;
};

/* Effective keepalive settings, read from the socket and its netns. */
struct rw_keepalive {
    __u32 idle_s;     /* TCP_KEEPIDLE or net.ipv4.tcp_keepalive_time */
    __u32 interval_s; /* TCP_KEEPINTVL or net.ipv4.tcp_keepalive_intvl */
    __u8 probes;      /* TCP_KEEPCNT or net.ipv4.tcp_keepalive_probes */
    __u8 enabled;     /* SOCK_KEEPOPEN (SO_KEEPALIVE) */
    __u8 from_socket; /* RW_KA_*_SOCKET */
    __u8 _pad;
    __u32 user_timeout_ms; /* TCP_USER_TIMEOUT, 0 when unset */
};

struct rw_timing {
    __u64 age_ms;        /* since the connection started; valid with RW_F_AGE_KNOWN */
    __u32 idle_ms;       /* since the last segment from the peer (rcv_tstamp) */
    __u32 since_send_ms; /* since the last segment sent (lsndtime) */
    __u32 netns;         /* inode of the socket's network namespace */
    __u32 ct_timeout_s;  /* its conntrack ESTABLISHED timeout; 0 without conntrack */
};

struct rw_reset {
    struct rw_header hdr;
    struct rw_endpoints ep;
    struct rw_owner owner;
    struct rw_keepalive ka;
    struct rw_timing tm;
    __u64 sock_id;       /* opaque socket identity for correlation; 0 without socket */
    __s32 kernel_reason; /* enum sk_rst_reason value; -1 when the kernel has none */
    __u32 flags;         /* RW_F_* */
    __u8 direction;      /* enum rw_direction */
    __u8 _pad[7];
};

struct rw_sockopt {
    struct rw_header hdr;
    struct rw_endpoints ep; /* ports are 0 while the socket is not connected */
    struct rw_owner owner;  /* the calling task */
    __u64 sock_id;
    __s32 fd;      /* -1 when it could not be found */
    __s32 level;   /* SOL_SOCKET or IPPROTO_TCP */
    __s32 optname; /* SO_KEEPALIVE, TCP_KEEPIDLE, ... */
    __s32 value;   /* the int the caller passed */
    __s32 result;  /* 0 or -errno, what setsockopt returned */
    __u32 netns;
};

struct rw_close {
    struct rw_header hdr;
    struct rw_endpoints ep; /* ep.state is the state it left */
    struct rw_owner owner;
    struct rw_keepalive ka;
    struct rw_timing tm;
    __u64 sock_id;
    __u32 flags;         /* RW_F_* */
    __s32 sk_err;        /* sk->sk_err at close (ETIMEDOUT for a timeout) */
    __u32 retransmits;   /* icsk_retransmits: consecutive unanswered retransmissions */
    __u32 total_retrans; /* tcp_sock.total_retrans */
    __u32 unanswered_ms; /* since the unanswered write (first_tx_mstamp) or first probe */
    __u16 resets_received;
    __u16 resets_sent;
    __u16 opts;      /* RW_OPT_* set on it */
    __u8 probes_out; /* keepalive probes sent without answer */
    __u8 cause;      /* enum rw_timeout_cause */
    __u8 _pad[4];
};

struct rw_enforce {
    struct rw_header hdr;
    struct rw_endpoints ep;
    struct rw_owner owner;
    struct rw_keepalive previous;
    struct rw_keepalive applied;
    __u64 sock_id;
    __u32 netns;
    __s32 error; /* first bpf_setsockopt error, 0 on success */
    __u8 dry_run;
    __u8 trigger; /* enum rw_enforce_trigger */
    __u8 _pad[6];
};

enum rw_enforce_trigger {
    RW_ENF_ACTIVE = 1,   /* active open (connect) */
    RW_ENF_PASSIVE = 2,  /* passive open (accept) */
    RW_ENF_EXISTING = 3, /* iter/tcp at start-up (--existing) */
    RW_ENF_CLAMP = 4,    /* a later setsockopt(TCP_KEEPIDLE) lowered (--mode always) */
};

/* `rstwatch enforce --mode`. */
enum rw_enforce_mode {
    RW_ENF_MODE_UNSET_ONLY = 1, /* only sockets whose application left SO_KEEPALIVE off */
    RW_ENF_MODE_ALWAYS = 2,     /* also lower a longer keepalive idle */
};

/* What the enforce programs apply: a read-only global (enf_cfg) of the enforce
 * object, set by the loader before load. `rstwatch enforce --status` reads it
 * back from the .rodata map of an attached program. */
struct rw_enforce_config {
    __u64 cgroup_id;    /* the cgroup the programs are attached to */
    __s32 cgroup_level; /* its depth in the v2 hierarchy (iterator filter) */
    __u32 idle_s;       /* TCP_KEEPIDLE to apply */
    __u32 interval_s;   /* TCP_KEEPINTVL to apply; 0: leave the netns default */
    __u32 probes;       /* TCP_KEEPCNT to apply; 0: leave the netns default */
    __u8 mode;          /* enum rw_enforce_mode */
    __u8 dry_run;       /* report only, change nothing */
    __u8 pinned;        /* the links outlive the rstwatch that installed them */
    __u8 _pad;
    __u32 installer_pid;
    __u64 started_ns; /* CLOCK_REALTIME when installed */
};

/* Counters of the enforce object (per-CPU array "enf_counters"). A dry run
 * counts the changes it would have made. */
enum rw_enf_counter {
    RW_ENF_CNT_LOST = 0,     /* bpf_ringbuf_reserve failed */
    RW_ENF_CNT_ACTIVE = 1,   /* changed at active open */
    RW_ENF_CNT_PASSIVE = 2,  /* changed at passive open */
    RW_ENF_CNT_EXISTING = 3, /* changed by --existing */
    RW_ENF_CNT_CLAMP = 4,    /* later setsockopt(TCP_KEEPIDLE) lowered */
    RW_ENF_CNT_KEPT = 5,     /* left alone: the application's keepalive already qualifies */
    RW_ENF_CNT_ERRORS = 6,   /* a bpf_setsockopt failed */
    RW_ENF_CNT_SEEDED = 7,   /* owners recorded by the start-up scan */
    RW_ENF_CNT_MAX = 8,
};

/* Written by the socket iterator (bpf_seq_write), one per (task, fd) holding a TCP socket. */
struct rw_snapshot {
    struct rw_header hdr;
    struct rw_endpoints ep;
    struct rw_owner owner; /* the task holding the fd */
    struct rw_keepalive ka;
    struct rw_timing tm;
    __u64 sock_id;
    __s32 fd;
    __u32 flags;
};

/* ---- Maps userspace reads ---- */

/* rw_socks: LRU hash, key = kernel socket address (u64). */
struct rw_sock_info {
    struct rw_owner owner;
    __u64 start_ns; /* 0 when unknown (seeded) */
    __u32 flags;    /* RW_F_KA_EVER, RW_F_ESTABLISHED */
    __u16 opts;     /* RW_OPT_* */
    __u16 resets_received;
    __u16 resets_sent;
    __u16 _pad[3];
};

/* rw_proc_stats: LRU hash, key = pid (tgid). Per-process counters for summaries. */
struct rw_proc_stats {
    char comm[RW_COMM_LEN];
    __u32 uid;
    /* opt_set[i] != 0: option bit (1 << i) (RW_OPT_*) was set by this process.
     * One byte per option, written with a plain store: OR-ing a shared mask
     * needs an atomic OR, an instruction kernels before 5.12 refuse to load. */
    __u8 opt_set[8];
    __u32 _pad;
    __u64 connections_closed;
    __u64 closed_without_keepalive;
    __u64 resets_received;
    __u64 resets_sent;
    __u64 timeouts;
    __u64 keepalive_options_set; /* number of keepalive setsockopt calls */
};

/* rw_listeners: hash, owner of the listening socket on (netns, port). */
struct rw_listener_key {
    __u32 netns;
    __u16 port;
    __u16 _pad;
};

/* rw_tuples: LRU hash of live connections by 4-tuple (v4 as v4-mapped v6). */
struct rw_tuple_key {
    __u8 local_addr[RW_ADDR_LEN];
    __u8 remote_addr[RW_ADDR_LEN];
    __u16 local_port;
    __u16 remote_port;
};

#define RW_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#if defined(__cplusplus)
#undef RW_STATIC_ASSERT
#define RW_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#endif

/* Layouts are part of the ABI: checked identically by clang -target bpf and g++. */
RW_STATIC_ASSERT(sizeof(struct rw_header) == 16, "rw_header");
RW_STATIC_ASSERT(sizeof(struct rw_endpoints) == 40, "rw_endpoints");
RW_STATIC_ASSERT(sizeof(struct rw_owner) == 40, "rw_owner");
RW_STATIC_ASSERT(sizeof(struct rw_keepalive) == 16, "rw_keepalive");
RW_STATIC_ASSERT(sizeof(struct rw_timing) == 24, "rw_timing");
RW_STATIC_ASSERT(sizeof(struct rw_reset) == 160, "rw_reset");
RW_STATIC_ASSERT(sizeof(struct rw_sockopt) == 128, "rw_sockopt");
RW_STATIC_ASSERT(sizeof(struct rw_close) == 176, "rw_close");
RW_STATIC_ASSERT(sizeof(struct rw_enforce) == 152, "rw_enforce");
RW_STATIC_ASSERT(sizeof(struct rw_snapshot) == 152, "rw_snapshot");
RW_STATIC_ASSERT(sizeof(struct rw_enforce_config) == 40, "rw_enforce_config");
RW_STATIC_ASSERT(sizeof(struct rw_sock_info) == 64, "rw_sock_info");
RW_STATIC_ASSERT(sizeof(struct rw_proc_stats) == 80, "rw_proc_stats");
RW_STATIC_ASSERT(sizeof(struct rw_tuple_key) == 36, "rw_tuple_key");

#endif /* RSTWATCH_RECORDS_H */
