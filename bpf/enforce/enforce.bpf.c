// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * rstwatch enforce: TCP keepalive for the connections of one cgroup v2 (and its
 * descendants) whose applications never enabled it. Its own object, apart from
 * the trace programs: it is attached to a cgroup, may outlive the rstwatch that
 * loaded it (--pin), and must not carry the tracer's maps along.
 *
 * - sockops (attached to the cgroup; the kernel runs it only for sockets created
 *   in that subtree): remembers who called connect()/listen(), and on active and
 *   passive establishment sets SO_KEEPALIVE and TCP_KEEPIDLE/INTVL/CNT.
 * - cgroup/setsockopt (--mode always only): lowers a later TCP_KEEPIDLE above
 *   --idle on an established connection.
 * - iter/task_file + iter/tcp (start-up): owners of sockets that existed before
 *   we attached; the first finds who holds each socket, the second stores it on
 *   the socket (see rw_enf_owners for why it takes two passes).
 * - iter/tcp (--existing): applies the settings to established connections;
 *   the kernel allows bpf_setsockopt from this iterator (it holds the socket lock).
 *
 * Every change, or would-be change with --dry-run, is a struct rw_enforce:
 * to the ring buffer from sockops/setsockopt, to the seq file from iter/tcp.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "rstwatch/records.h"

/* CONFIG_HZ measured by the loader, for sock_read.bpf.h when the kernel config
 * is unreadable (jiffies -> seconds). */
const volatile __u32 cfg_hz_fallback = 250;

#include "compat.bpf.h"
#include "helpers.bpf.h"
#include "sock_read.bpf.h"

/* Layout version of records.h, checked by the loader. */
const volatile __u32 rw_abi_version = RW_ABI_VERSION;
/* What to apply; also read back by `rstwatch enforce --status`. */
const volatile struct rw_enforce_config enf_cfg = {};

/* Whether sockops and cgroup/setsockopt programs may call bpf_get_current_pid_tgid,
 * _uid_gid and _comm (6.12 refuses _uid_gid in sockops, 6.1 and 5.10 also
 * _pid_tgid). The loader probes; when false the verifier prunes the calls and
 * the owner stays unknown unless the start-up scan found it. */
/* __u32, not bool: .rodata must stay a multiple of 8 bytes, the size of the
 * skeleton's view that `enforce --status` compares it with. */
const volatile __u32 enf_caller_sockops = 1;
const volatile __u32 enf_caller_sockopt = 1;

/* Records go to the ring buffer only while an rstwatch process drains it: a
 * pinned enforcement whose installer exited keeps enforcing and counting, but
 * does not fill a buffer that nobody reads. Written by userspace. */
bool enf_reporting = true;

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 1 << 20);
} enf_events SEC(".maps");

/* enum rw_enf_counter, per CPU. */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, RW_ENF_CNT_MAX);
    __type(key, __u32);
    __type(value, __u64);
} enf_counters SEC(".maps");

/* Owners found by the task_file pass, keyed by socket address, until the
 * iter/tcp pass stores them on the sockets. Userspace empties it afterwards. */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __uint(max_entries, 65536);
    __type(key, __u64);
    __type(value, struct rw_owner);
} enf_seed SEC(".maps");

/* Who owns a socket, stored on the socket itself: freed with it, and copied to
 * every connection accepted from a listener (BPF_F_CLONE), because a passive
 * open completes in softirq where the task on CPU is unrelated. */
struct enf_owner {
    struct rw_owner owner; /* with the socket's cgroup id */
    __u32 netns;
    __u32 _pad;
};
struct {
    __uint(type, BPF_MAP_TYPE_SK_STORAGE);
    __uint(map_flags, BPF_F_NO_PREALLOC | BPF_F_CLONE);
    __type(key, int);
    __type(value, struct enf_owner);
} enf_owners SEC(".maps");

static __always_inline void enf_count(__u32 idx) {
    __u64 *v = bpf_map_lookup_elem(&enf_counters, &idx);

    if (v) *v += 1;
}

/* The settings to apply to a socket whose keepalive is `cur`; false when the
 * socket already qualifies and is left alone. */
static __always_inline bool enf_plan(const struct rw_keepalive *cur, struct rw_keepalive *want) {
    *want = *cur;
    if (!cur->enabled) {
        want->enabled = 1;
        want->idle_s = enf_cfg.idle_s;
        if (enf_cfg.interval_s) want->interval_s = enf_cfg.interval_s;
        if (enf_cfg.probes) want->probes = enf_cfg.probes;
        return true;
    }
    if (enf_cfg.mode == RW_ENF_MODE_ALWAYS && cur->idle_s > enf_cfg.idle_s) {
        want->idle_s = enf_cfg.idle_s;
        return true;
    }
    return false;
}

/* Applies a plan with bpf_setsockopt. `target` is the sockops context or a
 * socket (iter/tcp): the helper takes either, and __always_inline lets the
 * verifier check each call site with its own type. Stops at the first error so
 * that keepalive is never switched on with half of our values. */
static __always_inline int enf_apply(void *target, const struct rw_keepalive *cur,
                                     const struct rw_keepalive *want) {
    int v = want->idle_s, err;

    err = bpf_setsockopt(target, IPPROTO_TCP, TCP_KEEPIDLE, &v, sizeof(v));
    if (err || cur->enabled) return err;
    if (enf_cfg.interval_s) {
        v = enf_cfg.interval_s;
        err = bpf_setsockopt(target, IPPROTO_TCP, TCP_KEEPINTVL, &v, sizeof(v));
        if (err) return err;
    }
    if (enf_cfg.probes) {
        v = enf_cfg.probes;
        err = bpf_setsockopt(target, IPPROTO_TCP, TCP_KEEPCNT, &v, sizeof(v));
        if (err) return err;
    }
    /* Last, so that the keepalive timer starts with our idle time. */
    v = 1;
    return bpf_setsockopt(target, SOL_SOCKET, SO_KEEPALIVE, &v, sizeof(v));
}

static __always_inline void enf_header(struct rw_enforce *r, __u8 trigger) {
    r->hdr.type = RW_REC_ENFORCE;
    r->hdr.size = sizeof(*r);
    r->hdr.cpu = bpf_get_smp_processor_id();
    r->hdr.ts_ns = bpf_ktime_get_ns();
    r->trigger = trigger;
    r->dry_run = enf_cfg.dry_run;
}

static __always_inline void enf_counted(__u8 trigger, int err) {
    if (err) {
        enf_count(RW_ENF_CNT_ERRORS);
        return;
    }
    switch (trigger) {
    case RW_ENF_ACTIVE:
        enf_count(RW_ENF_CNT_ACTIVE);
        break;
    case RW_ENF_PASSIVE:
        enf_count(RW_ENF_CNT_PASSIVE);
        break;
    case RW_ENF_EXISTING:
        enf_count(RW_ENF_CNT_EXISTING);
        break;
    case RW_ENF_CLAMP:
        enf_count(RW_ENF_CNT_CLAMP);
        break;
    }
}

/* bpf_ringbuf_output rather than reserve/submit: the record is built on the
 * stack by code shared with the iterator, which writes it to its seq file.
 * Every failure is counted (RW_ENF_CNT_LOST) and reported as a `lost` event. */
static __always_inline void enf_submit(struct rw_enforce *r) {
    if (!enf_reporting) return;
    if (bpf_ringbuf_output(&enf_events, r, sizeof(*r), 0)) enf_count(RW_ENF_CNT_LOST);
}

/* Everything of the record that comes from the socket. */
static __always_inline void enf_describe(struct rw_enforce *r, const struct sock *sk,
                                         const struct enf_owner *o) {
    rw_read_endpoints(sk, &r->ep);
    r->netns = rw_sock_netns(sk);
    if (o) r->owner = o->owner;
    r->owner.cgroup_id = rw_sock_cgroup_id(sk);
    r->sock_id = (__u64)sk;
}

/* ---- sockops ---- */

static __always_inline void enf_remember_owner(struct bpf_sock_ops *ctx, __u32 how) {
    struct bpf_sock *sk = ctx->sk;
    struct enf_owner *o;
    struct tcp_sock *tp;

    if (!sk) return;
    tp = bpf_skc_to_tcp_sock(sk);
    if (!tp) return;
    o = bpf_sk_storage_get(&enf_owners, sk, NULL, BPF_SK_STORAGE_GET_F_CREATE);
    if (!o) return;
    /* connect() and listen() run in the caller's context. */
    if (enf_caller_sockops) rw_owner_from_current(&o->owner, how);
    /* For setsockopt records, whose context cannot read these from the socket. */
    o->owner.cgroup_id = rw_sock_cgroup_id((const struct sock *)tp);
    o->netns = rw_sock_netns((const struct sock *)tp);
}

/* Plans and applies the settings for one socket and fills the record `r`;
 * false when the socket already qualifies (counted as kept). `target` is what
 * bpf_setsockopt takes in the calling program (the sockops context, or the
 * socket in iter/tcp), `owner_key` the socket as bpf_sk_storage_get takes it
 * there: __always_inline lets the verifier check each call site with its types. */
static __always_inline bool enf_enforce(void *target, void *owner_key, const struct sock *sk,
                                        __u8 trigger, struct rw_enforce *r) {
    struct rw_keepalive cur = {}, want;
    int err = 0;

    rw_read_keepalive(sk, &cur);
    if (!enf_plan(&cur, &want)) {
        enf_count(RW_ENF_CNT_KEPT);
        return false;
    }
    if (!enf_cfg.dry_run) err = enf_apply(target, &cur, &want);
    enf_counted(trigger, err);

    enf_header(r, trigger);
    enf_describe(r, sk, bpf_sk_storage_get(&enf_owners, owner_key, NULL, 0));
    r->previous = cur;
    if (enf_cfg.dry_run)
        r->applied = want;
    else
        rw_read_keepalive(sk, &r->applied); /* what the socket holds now */
    r->error = err;
    return true;
}

static __always_inline void enf_on_established(struct bpf_sock_ops *ctx, __u8 trigger) {
    struct bpf_sock *bsk = ctx->sk;
    struct rw_enforce r = {};
    struct tcp_sock *tp;

    if (!bsk) return;
    tp = bpf_skc_to_tcp_sock(bsk);
    if (!tp) return;
    if (enf_enforce(ctx, bsk, (const struct sock *)tp, trigger, &r)) enf_submit(&r);
}

SEC("sockops")
int rw_enf_sockops(struct bpf_sock_ops *ctx) {
    /* Never touch ctx->reply: other callbacks (TIMEOUT_INIT, RWND_INIT, ...)
     * read it, and 0 keeps the kernel's defaults. */
    switch (ctx->op) {
    case BPF_SOCK_OPS_TCP_CONNECT_CB:
        enf_remember_owner(ctx, RW_OWNER_CONNECT);
        break;
    case BPF_SOCK_OPS_TCP_LISTEN_CB:
        enf_remember_owner(ctx, RW_OWNER_LISTENER);
        break;
    case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
        enf_on_established(ctx, RW_ENF_ACTIVE);
        break;
    case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
        enf_on_established(ctx, RW_ENF_PASSIVE);
        break;
    }
    return 1;
}

/* ---- cgroup/setsockopt (--mode always) ---- */

static __always_inline int enf_getsockopt_int(struct bpf_sock *sk, int level, int optname) {
    int v = 0;

    if (bpf_getsockopt(sk, level, optname, &v, sizeof(v))) return 0;
    return v;
}

/* A TCP_KEEPIDLE above --idle, set on an established connection, is lowered to
 * --idle. Values set before the connection is established are left to the
 * establishment callback, which reports them with the connection's addresses;
 * values outside the kernel's range are left for the kernel to reject. */
SEC("cgroup/setsockopt")
int rw_enf_clamp(struct bpf_sockopt *ctx) {
    struct bpf_sock *sk = ctx->sk;
    __u32 optlen = ctx->optlen;
    struct rw_enforce r = {};
    struct enf_owner *o;
    int *p, req;

    /* Past RW_PAGE_SIZE the program sees a truncated copy: leave those alone. */
    if (optlen > RW_PAGE_SIZE) {
        ctx->optlen = 0;
        return 1;
    }
    if (!sk || sk->protocol != IPPROTO_TCP || ctx->level != IPPROTO_TCP ||
        ctx->optname != TCP_KEEPIDLE || sk->state != BPF_TCP_ESTABLISHED)
        return 1;
    p = ctx->optval;
    if ((void *)(p + 1) > ctx->optval_end || optlen < sizeof(int)) return 1;
    req = *p;
    if (req <= (int)enf_cfg.idle_s || req > RW_MAX_TCP_KEEPIDLE) return 1;

    enf_header(&r, RW_ENF_CLAMP);
    r.previous.enabled = enf_getsockopt_int(sk, SOL_SOCKET, SO_KEEPALIVE) != 0;
    r.previous.idle_s = req; /* what the application's call would have set */
    r.previous.interval_s = enf_getsockopt_int(sk, IPPROTO_TCP, TCP_KEEPINTVL);
    r.previous.probes = enf_getsockopt_int(sk, IPPROTO_TCP, TCP_KEEPCNT);
    r.applied = r.previous;
    r.applied.idle_s = enf_cfg.idle_s;
    /* The kernel then applies our value in place of the caller's. */
    if (!enf_cfg.dry_run) *p = enf_cfg.idle_s;
    enf_counted(RW_ENF_CLAMP, 0);

    /* setsockopt runs in the caller's context: the caller is the process. */
    if (enf_caller_sockopt) rw_owner_from_current(&r.owner, RW_OWNER_SOCKOPT);
    o = bpf_sk_storage_get(&enf_owners, sk, NULL, 0);
    if (o) {
        if (!enf_caller_sockopt) r.owner = o->owner;
        r.owner.cgroup_id = o->owner.cgroup_id;
        r.netns = o->netns;
    }
    r.ep.family = sk->family;
    r.ep.state = sk->state;
    r.ep.local_port = sk->src_port;
    r.ep.remote_port = bpf_ntohs(sk->dst_port);
    if (sk->family == AF_INET6) {
        /* bpf_sock fields are read one u32 at a time (context access rules). */
        __u32 *l6 = (__u32 *)r.ep.local_addr, *d6 = (__u32 *)r.ep.remote_addr;

        l6[0] = sk->src_ip6[0];
        l6[1] = sk->src_ip6[1];
        l6[2] = sk->src_ip6[2];
        l6[3] = sk->src_ip6[3];
        d6[0] = sk->dst_ip6[0];
        d6[1] = sk->dst_ip6[1];
        d6[2] = sk->dst_ip6[2];
        d6[3] = sk->dst_ip6[3];
    } else {
        *(__u32 *)r.ep.local_addr = sk->src_ip4;
        *(__u32 *)r.ep.remote_addr = sk->dst_ip4;
    }
    enf_submit(&r);
    return 1;
}

/* ---- iterators (start-up) ---- */

/* Owners of the cgroup's sockets that existed before we attached: the first
 * process found holding each (usually the parent of a fork).
 *
 * Two passes, because the socket reached from a file is not one the helpers
 * accept: `sock->sk` is a pointer walked from a field, which verifiers from
 * 6.18.44 on mark untrusted, and bpf_sk_storage_get (and even the
 * bpf_skc_to_* casts) refuse it ("R2 type=untrusted_ptr_"). This pass only reads
 * through it and records the owner by socket address; rw_enf_seed, an iter/tcp
 * program whose socket is trusted, stores it on the socket. */
SEC("iter/task_file")
int rw_enf_owners(struct bpf_iter__task_file *ctx) {
    struct task_struct *task = ctx->task;
    struct file *file = ctx->file;
    struct rw_owner owner = {};
    struct socket *sock;
    struct sock *sk;
    __u16 family;
    __u64 key;
    __u8 state;

    if (!task || !file) return 0;
    /* bpf_sock_from_file arrived in 5.11; without it the iterator finds nothing
     * (the loader warns) rather than failing the whole object. */
    if (!bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_sock_from_file)) return 0;
    sock = bpf_sock_from_file(file);
    if (!sock) return 0;
    sk = BPF_CORE_READ(sock, sk);
    if (!sk || !rw_is_tcp(sk)) return 0;
    family = BPF_CORE_READ(sk, __sk_common.skc_family);
    state = BPF_CORE_READ(sk, __sk_common.skc_state);
    if ((family != AF_INET && family != AF_INET6) || state == TCP_CLOSE) return 0;
    if (!rw_sock_in_cgroup(sk, enf_cfg.cgroup_id, enf_cfg.cgroup_level)) return 0;

    owner.pid = BPF_CORE_READ(task, tgid);
    owner.uid = BPF_CORE_READ(task, cred, uid.val);
    BPF_CORE_READ_STR_INTO(&owner.comm, task, group_leader, comm);
    /* Connections accepted later from this listener inherit the owner. */
    owner.how = state == TCP_LISTEN ? RW_OWNER_LISTENER : RW_OWNER_SEEDED;
    key = (__u64)sk;
    /* The first holder found wins. */
    bpf_map_update_elem(&enf_seed, &key, &owner, BPF_NOEXIST);
    return 0;
}

/* Second pass, once per network namespace the cgroup's tasks use: stores the
 * owners found above on their sockets (BPF_F_CLONE then hands a listener's owner
 * to every connection accepted from it). An owner learnt at connect()/listen()
 * is never replaced: the storage is created only where there is none. */
SEC("iter/tcp")
int rw_enf_seed(struct bpf_iter__tcp *ctx) {
    struct sock_common *skc = ctx->sk_common;
    struct enf_owner init = {};
    struct rw_owner *found;
    struct tcp_sock *tp;
    __u64 key;

    if (!skc) return 0;
    tp = bpf_skc_to_tcp_sock(skc);
    if (!tp) return 0;
    key = (__u64)tp;
    found = bpf_map_lookup_elem(&enf_seed, &key);
    if (!found) return 0;
    init.owner = *found;
    init.owner.cgroup_id = rw_sock_cgroup_id((const struct sock *)tp);
    init.netns = rw_sock_netns((const struct sock *)tp);
    if (bpf_sk_storage_get(&enf_owners, tp, &init, BPF_SK_STORAGE_GET_F_CREATE))
        enf_count(RW_ENF_CNT_SEEDED);
    bpf_map_delete_elem(&enf_seed, &key);
    return 0;
}

/* --existing: established connections of the cgroup in the iterator's network
 * namespace (userspace runs it once per namespace the cgroup's tasks use). */
SEC("iter/tcp")
int rw_enf_existing(struct bpf_iter__tcp *ctx) {
    struct sock_common *skc = ctx->sk_common;
    struct rw_enforce r = {};
    struct tcp_sock *tp;
    const struct sock *sk;

    if (!skc) return 0;
    tp = bpf_skc_to_tcp_sock(skc);
    if (!tp) return 0;
    sk = (const struct sock *)tp;
    if (BPF_CORE_READ(sk, __sk_common.skc_state) != TCP_ESTABLISHED) return 0;
    if (!rw_sock_in_cgroup(sk, enf_cfg.cgroup_id, enf_cfg.cgroup_level)) return 0;
    if (enf_enforce(tp, tp, sk, RW_ENF_EXISTING, &r)) bpf_seq_write(ctx->meta->seq, &r, sizeof(r));
    return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
