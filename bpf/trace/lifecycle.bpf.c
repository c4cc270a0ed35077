// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Connection lifecycle from inet_sock_set_state: who owns each socket (learnt in
 * process context at connect() and listen(), inherited from the listener for
 * accepted connections), when it started, and what happened at its end
 * (connection_closed, tcp_timeout). Entries are deleted at close so the maps
 * track live connections only.
 */
/* The socket is a tracepoint argument: a trusted BTF pointer. */
#define RW_DIRECT_READS
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "sock.bpf.h"

/* CLOSE -> SYN_SENT runs in connect(), in the caller's context. */
static __always_inline void rw_on_connect(const struct sock *sk) {
    struct rw_sock_info info = {};
    __u64 key = (__u64)sk;

    rw_owner_from_current(&info.owner, RW_OWNER_CONNECT);
    info.owner.cgroup_id = rw_sock_cgroup_id(sk);
    info.start_ns = bpf_ktime_get_ns();
    if (bpf_map_update_elem(&rw_socks, &key, &info, BPF_ANY)) rw_count(RW_CNT_SOCK_MAP_FULL);
}

/* -> LISTEN runs in listen(), in the caller's context. Listener keys use
 * inet_sport: when a listener closes, the tracepoint fires after its port was
 * released (skc_num 0). */
static __always_inline void rw_on_listen(const struct sock *sk) {
    struct rw_listener_key k = rw_listener_key_of(rw_sock_netns(sk), rw_local_port(sk, true));
    struct rw_owner owner = {};

    rw_owner_from_current(&owner, RW_OWNER_CONNECT);
    owner.cgroup_id = rw_sock_cgroup_id(sk);
    bpf_map_update_elem(&rw_listeners, &k, &owner, BPF_ANY);
}

static __always_inline void rw_on_established(const struct sock *sk, int oldstate) {
    __u64 key = (__u64)sk;
    struct rw_sock_info *info = bpf_map_lookup_elem(&rw_socks, &key);
    struct rw_tuple_key tk = {};
    struct rw_endpoints ep = {};
    /* Options set before connect()/accept() are visible in the socket itself. */
    __u16 opts = rw_opts_from_sock(sk);

    rw_read_endpoints(sk, &ep);
    if (info) {
        info->flags |= RW_F_ESTABLISHED;
        info->opts |= opts;
        if (info->opts & RW_OPT_SO_KEEPALIVE) info->flags |= RW_F_KA_EVER;
    } else {
        /* Built whole and inserted once: no second lookup. */
        struct rw_sock_info fresh = {.flags = RW_F_ESTABLISHED, .opts = opts};

        /* Accepted: established in softirq, so the owner is the listener's. A
         * connect that started before we attached has no known owner. */
        if (oldstate == TCP_SYN_RECV) {
            struct rw_listener_key lk = rw_listener_key_of(rw_sock_netns(sk), ep.local_port);
            struct rw_owner *l = bpf_map_lookup_elem(&rw_listeners, &lk);

            if (l) {
                fresh.owner = *l;
                fresh.owner.how = RW_OWNER_LISTENER;
            }
            fresh.start_ns = bpf_ktime_get_ns();
        }
        fresh.owner.cgroup_id = rw_sock_cgroup_id(sk);
        if (opts & RW_OPT_SO_KEEPALIVE) fresh.flags |= RW_F_KA_EVER;
        if (bpf_map_update_elem(&rw_socks, &key, &fresh, BPF_ANY)) {
            rw_count(RW_CNT_SOCK_MAP_FULL);
            return;
        }
    }

    rw_tuple_of(&tk, &ep, false);
    bpf_map_update_elem(&rw_tuples, &tk, &ep.family, BPF_ANY);
}

/* How the kernel gave up on a connection whose peer went silent. tcp_write_err()
 * purges the write queue (packets_out = 0) before tcp_done() changes the state,
 * so what remains is the counters: keepalive probes are only sent with nothing
 * in flight, so a death without any retransmission is the keepalive's. A user
 * timeout is enforced by the same retransmission timer. */
static __always_inline __u8 rw_timeout_cause(const struct sock *sk) {
    const struct tcp_sock *tp = RW_TCP_SOCK(sk);

    if (!tp) return RW_CAUSE_RETRANSMIT;
    if (RW_READ(tp, inet_conn.icsk_retransmits) == 0 && RW_READ(tp, inet_conn.icsk_probes_out) > 0)
        return RW_CAUSE_KEEPALIVE;
    if (RW_READ(tp, inet_conn.icsk_user_timeout)) return RW_CAUSE_USER_TIMEOUT;
    return RW_CAUSE_RETRANSMIT;
}

static __always_inline void rw_fill_close(struct rw_close *c, const struct sock *sk,
                                          const struct rw_sock_info *info, int oldstate,
                                          __s32 sk_err, bool timeout) {
    const struct tcp_sock *tp = RW_TCP_SOCK(sk);

    rw_read_endpoints(sk, &c->ep);
    c->ep.state = oldstate;
    rw_read_keepalive(sk, &c->ka);
    c->flags = RW_F_FULLSOCK;
    rw_read_timing(sk, true, &c->tm, &c->flags);
    c->sock_id = (__u64)sk;
    c->sk_err = sk_err;
    if (info) {
        c->owner = info->owner;
        c->flags |= info->flags;
        c->opts = info->opts;
        c->resets_received = info->resets_received;
        c->resets_sent = info->resets_sent;
        rw_set_age(c->hdr.ts_ns, info->start_ns, &c->tm.age_ms, &c->flags);
    }
    if (c->ka.enabled) c->flags |= RW_F_KA_EVER;
    if (!tp) return;
    c->retransmits = RW_READ(tp, inet_conn.icsk_retransmits);
    c->total_retrans = RW_READ(tp, total_retrans);
    c->probes_out = RW_READ(tp, inet_conn.icsk_probes_out);

    if (timeout) {
        __u32 now = (__u32)bpf_jiffies64();
        __u32 rcv = RW_READ(tp, rcv_tstamp);
        __u32 snd = RW_READ(tp, lsndtime);
        __u32 silent = rw_jiffies_to_ms(now - rcv);

        c->cause = rw_timeout_cause(sk);
        if (c->cause == RW_CAUSE_KEEPALIVE) {
            /* Probing starts once the connection has been idle for the keepalive
             * time; what came after is the unanswered part. */
            __u32 idle = c->ka.idle_s * 1000;

            if (idle > silent) idle = silent;
            c->tm.idle_ms = idle;
            c->unanswered_ms = silent - idle;
        } else {
            /* first_tx_mstamp (rate sampling, us of the TCP clock =
             * CLOCK_MONOTONIC) is set when a flight starts with nothing in
             * flight: the first unanswered write. lsndtime and retrans_stamp
             * would not do: both move with retransmissions. */
            __u64 first_us = RW_READ(tp, first_tx_mstamp);
            __u64 now_us = bpf_ktime_get_ns() / 1000;
            __u32 unanswered;

            if (first_us && now_us > first_us)
                unanswered = (__u32)((now_us - first_us) / 1000);
            else
                unanswered = rw_jiffies_to_ms(now - snd);
            if (unanswered > silent) unanswered = silent;
            c->unanswered_ms = unanswered;
            c->tm.idle_ms = silent - unanswered;
        }
    }
}

/* Can this socket still send a reset of its own after this close? Only when the
 * close was the application's or the stack's decision (linger 0, unread data,
 * orphan limits: tcp_disconnect/tcp_close set CLOSE, then send the RST). A
 * socket that died of an error has sk_err set before tcp_done() changes the
 * state (a received RST: ECONNRESET/EPIPE; a timeout: ETIMEDOUT) and sends
 * nothing after (tcp_abort sends its RST before the close). Those skip the
 * rw_closing insert: in an abort storm, one of the two closes. */
static __always_inline bool rw_may_reset_after_close(__s32 sk_err) {
    return sk_err == 0;
}

static __always_inline void rw_on_close(const struct sock *sk, int oldstate) {
    __u64 key = (__u64)sk;
    struct rw_sock_info *info;
    struct rw_proc_stats *st = NULL;
    struct rw_tuple_key tk = {};
    struct rw_endpoints ep = {};
    struct rw_close *c;
    bool established, timeout, emit;
    __s32 sk_err;

    if (oldstate == TCP_LISTEN) {
        /* tcp_set_state() releases the port (skc_num = 0) before the state
         * change is traced: the key needs inet_sport, or the entry leaks. */
        struct rw_listener_key lk = rw_listener_key_of(rw_sock_netns(sk), rw_local_port(sk, true));

        bpf_map_delete_elem(&rw_listeners, &lk);
        return;
    }

    info = bpf_map_lookup_elem(&rw_socks, &key);
    established = oldstate != TCP_SYN_SENT && oldstate != TCP_SYN_RECV;
    sk_err = RW_READ(sk, sk_err);
    timeout = established && sk_err == ETIMEDOUT;

    /* A connect that never completed (refused, timed out in SYN_SENT) only
     * leaves rw_socks: no history worth keeping, no per-process count. */
    if (info && (info->flags & RW_F_ESTABLISHED)) {
        if (rw_keepopen(sk)) info->flags |= RW_F_KA_EVER;
        if (rw_may_reset_after_close(sk_err)) rw_remember_closed(key, info);
        st = rw_proc_stats_of(&info->owner);
        if (st) {
            __sync_fetch_and_add(&st->connections_closed, 1);
            if (!(info->flags & RW_F_KA_EVER))
                __sync_fetch_and_add(&st->closed_without_keepalive, 1);
            if (timeout) __sync_fetch_and_add(&st->timeouts, 1);
        }
    }

    emit = (timeout && (cfg_emit & RW_EMIT_TIMEOUT)) ||
           (established && info && (info->flags & RW_F_ESTABLISHED) &&
            (cfg_emit & RW_EMIT_CONNECTION));
    if (emit) {
        /* Filter before reserving (see rw_handle_reset). */
        struct rw_owner none = {};
        __u32 netns = rw_sock_netns(sk);

        rw_read_endpoints(sk, &ep);
        if (!rw_filter_owner(info ? &info->owner : &none) || !rw_filter_conn(&ep, netns, sk)) {
            rw_count(RW_CNT_FILTERED);
            emit = false;
        }
    }
    if (emit) {
        c = rw_reserve(sizeof(*c), RW_REC_CLOSE, RW_CNT_LOST_CLOSE);
        if (c) {
            rw_fill_close(c, sk, info, oldstate, sk_err, timeout);
            /* --min-idle applies to timeouts, whose idle is known only now. */
            rw_submit_if(c, !timeout || !cfg_filter_min_idle_ms ||
                                c->tm.idle_ms >= cfg_filter_min_idle_ms);
        }
    }

    if (info) {
        bpf_map_delete_elem(&rw_socks, &key);
        if (established) {
            if (!ep.family) rw_read_endpoints(sk, &ep);
            rw_tuple_of(&tk, &ep, false);
            bpf_map_delete_elem(&rw_tuples, &tk);
        }
    }
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(rw_inet_sock_set_state, const struct sock *sk, const int oldstate,
             const int newstate) {
    if (oldstate == newstate || !rw_is_tcp(sk)) return 0;

    switch (newstate) {
    case TCP_SYN_SENT:
        if (oldstate == TCP_CLOSE) rw_on_connect(sk);
        break;
    case TCP_LISTEN:
        rw_on_listen(sk);
        break;
    case TCP_ESTABLISHED:
        rw_on_established(sk, oldstate);
        break;
    case TCP_CLOSE:
        rw_on_close(sk, oldstate);
        break;
    }
    return 0;
}
