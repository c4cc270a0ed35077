// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * setsockopt calls that change keepalive behaviour. Two hooks, exactly one
 * loaded (docs/PERFORMANCE.md has the measurement behind this):
 *
 * - cgroup/setsockopt on the cgroup v2 root (default): runs only inside
 *   setsockopt(2), so nothing else pays for it. It updates the per-socket and
 *   per-process state but cannot see the fd or the return value, so it emits no
 *   events.
 * - sys_enter/sys_exit_setsockopt (with --events keepalive): sees the fd and the
 *   real result (-EBADF, -EINVAL, ...) and emits keepalive_set records, at the
 *   price of putting every syscall of every task on the tracing slow path while
 *   attached.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "sock.bpf.h"

static __always_inline __u32 rw_opt_bit(int level, int optname) {
    if (level == SOL_SOCKET) return optname == SO_KEEPALIVE ? RW_OPT_SO_KEEPALIVE : 0;
    if (level != IPPROTO_TCP) return 0;
    switch (optname) {
    case TCP_KEEPIDLE:
        return RW_OPT_TCP_KEEPIDLE;
    case TCP_KEEPINTVL:
        return RW_OPT_TCP_KEEPINTVL;
    case TCP_KEEPCNT:
        return RW_OPT_TCP_KEEPCNT;
    case TCP_USER_TIMEOUT:
        return RW_OPT_TCP_USER_TIMEOUT;
    }
    return 0;
}

/* setsockopt(fd, IPPROTO_TCP, SO_KEEPALIVE, ...) is a real-world bug: at that
 * level 9 is TCP_DEFER_ACCEPT, so keepalive stays off. Reported, never counted. */
static __always_inline bool rw_opt_misdirected(int level, int optname) {
    return level == IPPROTO_TCP && optname == SO_KEEPALIVE;
}

/* The kernel's own range checks (do_tcp_setsockopt, sk_setsockopt). */
static __always_inline bool rw_opt_value_ok(__u32 bit, int val, __u32 optlen) {
    if (optlen < sizeof(int)) return false;
    switch (bit) {
    case RW_OPT_TCP_KEEPIDLE:
    case RW_OPT_TCP_KEEPINTVL:
        return val >= 1 && val <= RW_MAX_TCP_KEEPIDLE;
    case RW_OPT_TCP_KEEPCNT:
        return val >= 1 && val <= RW_MAX_TCP_KEEPCNT;
    case RW_OPT_TCP_USER_TIMEOUT:
        return val >= 0;
    }
    return true;
}

/* No atomic OR (5.12+): one byte per option, set with a plain store. */
static __always_inline void rw_mark_opt(struct rw_proc_stats *st, __u32 bit) {
#pragma unroll
    for (int i = 0; i < RW_OPT_COUNT; i++)
        if (bit == (1u << i)) st->opt_set[i] = 1;
}

/* State shared by both hooks: a successful call marks the socket and the
 * process; any setsockopt by a process refines the owner of an accepted socket
 * that so far only had its listener's owner. Without the caller's identity
 * (caller_known false: cgroup hook on older kernels) the socket's recorded owner
 * is credited instead, and accepted sockets keep their listener's owner. */
static __always_inline void rw_note_sockopt(__u64 key, __u32 bit, int val, bool ok,
                                            bool caller_known) {
    struct rw_sock_info *info = bpf_map_lookup_elem(&rw_socks, &key);
    struct rw_owner caller = {};
    bool have_caller = false;

    if (caller_known && info &&
        (info->owner.how == RW_OWNER_LISTENER || info->owner.how == RW_OWNER_NONE)) {
        rw_owner_from_current(&caller, RW_OWNER_SOCKOPT);
        have_caller = true;
        caller.cgroup_id = info->owner.cgroup_id;
        info->owner = caller;
    }
    if (!bit || !ok) return;
    if (info) {
        info->opts |= bit;
        if (bit == RW_OPT_SO_KEEPALIVE && val) info->flags |= RW_F_KA_EVER;
    }
    if (!have_caller) {
        if (caller_known)
            rw_owner_from_current(&caller, RW_OWNER_SOCKOPT);
        else if (info)
            caller = info->owner;
        else
            return;
    }
    {
        struct rw_proc_stats *st = rw_proc_stats_of(&caller);

        if (st) {
            rw_mark_opt(st, bit);
            __sync_fetch_and_add(&st->keepalive_options_set, 1);
        }
    }
}

SEC("cgroup/setsockopt")
int rw_cgroup_setsockopt(struct bpf_sockopt *ctx) {
    struct bpf_sock *sk = ctx->sk;
    int level = ctx->level, optname = ctx->optname;
    __u32 optlen = ctx->optlen;
    __u32 bit;
    int val = 0;

    if (!sk || sk->protocol != IPPROTO_TCP) goto out;
    bit = rw_opt_bit(level, optname);
    if (bit) {
        int *p = ctx->optval;

        if ((void *)(p + 1) <= ctx->optval_end) val = *p;
    }
    rw_note_sockopt((__u64)sk, bit, val, bit && rw_opt_value_ok(bit, val, optlen),
                    cfg_sockopt_caller);
out:
    /* We never change the option. Past RW_PAGE_SIZE the program sees a truncated
     * copy; optlen 0 tells the kernel to use the caller's original buffer. */
    if (optlen > RW_PAGE_SIZE) ctx->optlen = 0;
    return 1;
}

/* fd -> struct sock of the calling task, NULL when it is not a socket. */
static __always_inline struct sock *rw_sock_from_fd(int fd) {
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
    struct file **fds = BPF_CORE_READ(fdt, fd);
    struct file *f = NULL;
    struct socket *sock;

    if (fd < 0 || (unsigned int)fd >= BPF_CORE_READ(fdt, max_fds)) return NULL;
    bpf_core_read(&f, sizeof(f), &fds[fd]);
    if (!f || (BPF_CORE_READ(f, f_inode, i_mode) & S_IFMT) != S_IFSOCK) return NULL;
    sock = BPF_CORE_READ(f, private_data);
    return BPF_CORE_READ(sock, sk);
}

SEC("tracepoint/syscalls/sys_enter_setsockopt")
int rw_sys_enter_setsockopt(struct trace_event_raw_sys_enter *ctx) {
    struct rw_pending_sockopt p = {};
    __u64 id = bpf_get_current_pid_tgid();
    const void *optval = (const void *)ctx->args[3];

    p.fd = (int)ctx->args[0];
    p.level = (int)ctx->args[1];
    p.optname = (int)ctx->args[2];
    p.optlen = (__u32)ctx->args[4];
    if (!rw_opt_bit(p.level, p.optname) && !rw_opt_misdirected(p.level, p.optname)) return 0;
    if (optval && p.optlen >= sizeof(int)) bpf_probe_read_user(&p.value, sizeof(p.value), optval);
    bpf_map_update_elem(&rw_pending_sockopt, &id, &p, BPF_ANY);
    return 0;
}

SEC("tracepoint/syscalls/sys_exit_setsockopt")
int rw_sys_exit_setsockopt(struct trace_event_raw_sys_exit *ctx) {
    __u64 id = bpf_get_current_pid_tgid();
    struct rw_pending_sockopt *pp = bpf_map_lookup_elem(&rw_pending_sockopt, &id);
    struct rw_pending_sockopt p;
    struct rw_sockopt *r;
    struct sock *sk;
    __s32 ret = (__s32)ctx->ret;
    __u32 bit;

    if (!pp) return 0;
    p = *pp;
    bpf_map_delete_elem(&rw_pending_sockopt, &id);

    sk = rw_sock_from_fd(p.fd);
    if (sk && !rw_is_tcp(sk)) return 0;
    bit = rw_opt_bit(p.level, p.optname);
    if (sk) rw_note_sockopt((__u64)sk, bit, p.value, bit && ret == 0, true);

    if (!(cfg_emit & RW_EMIT_KEEPALIVE)) return 0;
    {
        /* Filter before reserving (see rw_handle_reset). */
        struct rw_owner caller = {};
        struct rw_endpoints ep = {};
        __u32 netns = 0;

        rw_owner_from_current(&caller, RW_OWNER_CURRENT);
        if (sk) {
            rw_read_endpoints(sk, &ep);
            netns = rw_sock_netns(sk);
            caller.cgroup_id = rw_sock_cgroup_id(sk);
        }
        /* A bad fd has no connection: connection filters exclude it. */
        if (!rw_filter_owner(&caller) || (sk && !rw_filter_conn(&ep, netns, sk)) ||
            (!sk && (cfg_filter_port || cfg_filter_netns || cfg_filter_cgroup_level >= 0))) {
            rw_count(RW_CNT_FILTERED);
            return 0;
        }
        r = rw_reserve(sizeof(*r), RW_REC_SOCKOPT, RW_CNT_LOST_SOCKOPT);
        if (!r) return 0;
        r->owner = caller;
        r->ep = ep;
        r->netns = netns;
        r->fd = p.fd;
        r->level = p.level;
        r->optname = p.optname;
        r->value = p.value;
        r->result = ret;
        if (sk) r->sock_id = (__u64)sk;
        rw_submit(r);
    }
    return 0;
}
