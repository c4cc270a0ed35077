// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * TCP resets, sent and received. The owner comes from the socket (rw_socks),
 * never from the task on CPU: a received RST is handled in softirq context where
 * the current task is whoever happened to be running.
 */
/* The socket and skb are tracepoint arguments: trusted BTF pointers. */
#define RW_DIRECT_READS
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "sock.bpf.h"

static __always_inline void rw_owner_of_nonfull(const struct sock *sk, __u8 state,
                                                struct rw_owner *owner) {
    /* A listening socket, or a request socket still owned by its listener. */
    if (state == TCP_LISTEN || state == TCP_NEW_SYN_RECV) {
        struct rw_listener_key k =
            rw_listener_key_of(rw_sock_netns(sk), RW_READ(sk, __sk_common.skc_num));
        struct rw_owner *l = bpf_map_lookup_elem(&rw_listeners, &k);

        if (l) {
            *owner = *l;
            owner->how = RW_OWNER_LISTENER;
        }
    }
}

static __always_inline int rw_handle_reset(const struct sock *sk, const struct sk_buff *skb,
                                           __u8 direction, __s32 reason) {
    struct rw_sock_info *info = NULL;
    struct rw_proc_stats *st;
    struct rw_endpoints ep = {};
    struct rw_owner owner = {};
    struct rw_timing tm = {};
    struct rw_reset *r;
    __u32 flags = 0;
    bool full = false;

    if (sk) {
        __u8 state = RW_READ(sk, __sk_common.skc_state);

        full = rw_is_fullsock(state);
        if (full && state != TCP_LISTEN) {
            info = rw_sock_info_of(sk);
            if (info) {
                owner = info->owner;
                if (direction == RW_DIR_RECEIVED)
                    info->resets_received++;
                else
                    info->resets_sent++;
            }
        } else {
            rw_owner_of_nonfull(sk, state, &owner);
        }
    }

    st = rw_proc_stats_of(&owner);
    if (st) {
        if (direction == RW_DIR_RECEIVED)
            __sync_fetch_and_add(&st->resets_received, 1);
        else
            __sync_fetch_and_add(&st->resets_sent, 1);
    }
    if (!(cfg_emit & RW_EMIT_RESET)) return 0;

    /* What the filters need first, so a filtered reset never takes (or fails
     * to take) ring-buffer space: lost counts only events the user wanted. */
    if (sk) {
        rw_read_endpoints(sk, &ep);
        rw_read_timing(sk, full, &tm, &flags);
    } else if (!skb || !rw_endpoints_from_skb(skb, &ep, &tm.netns)) {
        return 0;
    }
    if (!rw_filter_owner(&owner) || !rw_filter_conn(&ep, tm.netns, sk) ||
        (cfg_filter_min_idle_ms && tm.idle_ms < cfg_filter_min_idle_ms)) {
        rw_count(RW_CNT_FILTERED);
        return 0;
    }

    r = rw_reserve(sizeof(*r), RW_REC_RESET, RW_CNT_LOST_RESET);
    if (!r) return 0;
    r->direction = direction;
    r->kernel_reason = reason;
    r->owner = owner;
    r->ep = ep;
    r->tm = tm;
    r->flags = flags;
    /* tcp_send_active_reset traces without the skb that caused the RST: the
     * abort was this host's decision (every kernel version). */
    if (direction == RW_DIR_SENT && sk && !skb) r->flags |= RW_F_ACTIVE;
    if (!sk) {
        r->flags |= RW_F_NO_SOCKET;
    } else {
        r->sock_id = (__u64)sk;
        if (full) {
            r->flags |= RW_F_FULLSOCK;
            rw_read_keepalive(sk, &r->ka);
            if (info) {
                rw_set_age(r->hdr.ts_ns, info->start_ns, &r->tm.age_ms, &r->flags);
                if (r->ka.enabled) info->flags |= RW_F_KA_EVER;
            }
        }
    }
    /* Only an established connection can have a live peer socket here. */
    if (direction == RW_DIR_RECEIVED && ep.state != TCP_SYN_SENT) {
        struct rw_tuple_key peer = {};

        rw_tuple_of(&peer, &ep, true);
        if (bpf_map_lookup_elem(&rw_tuples, &peer)) r->flags |= RW_F_PEER_LOCAL;
    }
    rw_submit(r);
    return 0;
}

SEC("tp_btf/tcp_send_reset")
int BPF_PROG(rw_tcp_send_reset, const struct sock *sk, const struct sk_buff *skb) {
    __s32 reason = -1;

    /* tcp_send_reset gained `enum sk_rst_reason` as a third argument in 6.10,
     * together with the enum itself. On older kernels the CO-RE check is 0 and
     * the verifier prunes the read, which would otherwise fail verification
     * (the context has only two arguments there). */
    if (bpf_core_type_exists(enum sk_rst_reason)) reason = (__s32)ctx[2];
    return rw_handle_reset(sk, skb, RW_DIR_SENT, reason);
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(rw_tcp_receive_reset, struct sock *sk) {
    return rw_handle_reset(sk, NULL, RW_DIR_RECEIVED, -1);
}
