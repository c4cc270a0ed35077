/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Reading a TCP socket's identity, owner, keepalive settings and timers, and the
 * small pieces every handler shares (owner lookup, filters, counters). Everything
 * is read through CO-RE so that the same object loads on every supported kernel.
 */
#ifndef RSTWATCH_SOCK_BPF_H
#define RSTWATCH_SOCK_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "compat.bpf.h"
#include "helpers.bpf.h"
#include "maps.bpf.h"
/* After maps.bpf.h: the readers use its cfg_hz_fallback. */
#include "sock_read.bpf.h"

static __always_inline void rw_count(__u32 idx) {
    __u64 *v = bpf_map_lookup_elem(&rw_counters, &idx);

    if (v) *v += 1;
}

/* Reserve a record in the ring buffer and fill its header; counts the loss. */
static __always_inline void *rw_reserve(__u32 size, __u16 type, __u32 lost_counter) {
    struct rw_header *h = bpf_ringbuf_reserve(&rw_events, size, 0);

    if (!h) {
        rw_count(lost_counter);
        return NULL;
    }
    __builtin_memset(h, 0, size);
    h->type = type;
    h->size = size;
    h->cpu = bpf_get_smp_processor_id();
    h->ts_ns = bpf_ktime_get_ns();
    return h;
}

/* Addresses of an RST sent for a packet that matched no socket: the reset goes
 * back to where the packet came from, so local = its destination. The headers
 * are read at their wire offsets (fixed by RFC 791, 8200, 793) rather than
 * through vmlinux's iphdr/ipv6hdr/tcphdr: each CO-RE-relocated type costs
 * libbpf a walk over every kernel BTF type at start-up. */
static __always_inline bool rw_endpoints_from_skb(const struct sk_buff *skb,
                                                  struct rw_endpoints *ep, __u32 *netns) {
    unsigned char *head = RW_READ_PTR(skb, head);
    __u16 nh = RW_READ(skb, network_header);
    __u16 th = RW_READ(skb, transport_header);
    __u16 ports[2]; /* source, destination */
    __u8 vers = 0;

    if (!head || bpf_probe_read_kernel(&vers, 1, head + nh)) return false;
    vers >>= 4;
    if (vers == 4) {
        __u8 addrs[8]; /* saddr, daddr at offset 12 */

        if (bpf_probe_read_kernel(addrs, sizeof(addrs), head + nh + 12)) return false;
        ep->family = AF_INET;
        __builtin_memcpy(ep->local_addr, addrs + 4, 4);
        __builtin_memcpy(ep->remote_addr, addrs, 4);
    } else if (vers == 6) {
        __u8 addrs[32]; /* saddr, daddr at offset 8 */

        if (bpf_probe_read_kernel(addrs, sizeof(addrs), head + nh + 8)) return false;
        ep->family = AF_INET6;
        __builtin_memcpy(ep->local_addr, addrs + 16, 16);
        __builtin_memcpy(ep->remote_addr, addrs, 16);
    } else {
        return false;
    }
    if (bpf_probe_read_kernel(ports, sizeof(ports), head + th)) return false;
    ep->local_port = bpf_ntohs(ports[1]);
    ep->remote_port = bpf_ntohs(ports[0]);
    ep->state = TCP_CLOSE;
    *netns = RW_READ_PTR(skb, dev, nd_net.net, ns.inum);
    return true;
}

/* The conntrack ESTABLISHED timeout of a netns, 0 when conntrack never ran in it
 * (the per-netns tables are filled when nf_conntrack initialises the netns). */
static __always_inline __u32 rw_ct_timeout_s(const struct net *net) {
    if (!bpf_core_field_exists(struct net, ct)) return 0;
    return BPF_CORE_READ(net, ct.nf_ct_proto.tcp.timeouts[TCP_CONNTRACK_ESTABLISHED]) / rw_hz();
}

/* Idle and send timers. rcv_tstamp is the last segment from the peer: the idle
 * period a middlebox sees. lsndtime is the last new data this host sent. */
static __always_inline void rw_read_timing(const struct sock *sk, bool fullsock,
                                           struct rw_timing *tm, __u32 *flags) {
    const struct net *net = RW_READ_PTR(sk, __sk_common.skc_net.net);

    tm->netns = BPF_CORE_READ(net, ns.inum);
    tm->ct_timeout_s = rw_ct_timeout_s(net);
    if (fullsock) {
        const struct tcp_sock *tp = RW_TCP_SOCK(sk);
        __u32 now = (__u32)bpf_jiffies64();
        __u8 state = RW_READ(sk, __sk_common.skc_state);

        /* Before the handshake completes nothing has been received. */
        if (!tp || state == TCP_SYN_SENT || state == TCP_SYN_RECV || state == TCP_LISTEN) return;
        *flags |= RW_F_TIMERS;
        tm->idle_ms = rw_jiffies_to_ms(now - RW_READ(tp, rcv_tstamp));
        tm->since_send_ms = rw_jiffies_to_ms(now - RW_READ(tp, lsndtime));
    }
}

static __always_inline struct rw_listener_key rw_listener_key_of(__u32 netns, __u16 port) {
    struct rw_listener_key k = {.netns = netns, .port = port};
    return k;
}

/* Owner and history of a socket: rw_socks, or rw_closing for a socket that
 * closed a moment ago (a reset can follow its own close). */
static __always_inline struct rw_sock_info *rw_sock_info_of(const struct sock *sk) {
    __u64 key = (__u64)sk;
    struct rw_sock_info *info = bpf_map_lookup_elem(&rw_socks, &key);
    struct rw_closing *c;

    if (info) return info;
    c = bpf_map_lookup_elem(&rw_closing, &key);
    if (c && bpf_ktime_get_ns() - c->ts_ns < RW_CLOSING_VALID_NS) return &c->info;
    return NULL;
}

static __always_inline void rw_remember_closed(__u64 key, const struct rw_sock_info *info) {
    struct rw_closing c = {.ts_ns = bpf_ktime_get_ns(), .info = *info};

    bpf_map_update_elem(&rw_closing, &key, &c, BPF_ANY);
}

static __always_inline struct rw_proc_stats *rw_proc_stats_of(const struct rw_owner *o) {
    struct rw_proc_stats *st;
    __u32 pid = o->pid;

    if (!pid) return NULL;
    st = bpf_map_lookup_elem(&rw_proc_stats, &pid);
    if (st) return st; /* the common case, without building `fresh` */
    {
        struct rw_proc_stats fresh = {};

        __builtin_memcpy(fresh.comm, o->comm, sizeof(fresh.comm));
        fresh.uid = o->uid;
        return rw_lookup_or_init(&rw_proc_stats, &pid, &fresh);
    }
}

/* v4 addresses as v4-mapped v6, so a v4 socket and a dual-stack v6 socket of the
 * same connection produce the same key. */
static __always_inline void rw_addr_mapped(__u8 dst[16], const __u8 src[16], __u16 family) {
    if (family == AF_INET) {
        __builtin_memset(dst, 0, 10);
        dst[10] = 0xff;
        dst[11] = 0xff;
        __builtin_memcpy(dst + 12, src, 4);
    } else {
        __builtin_memcpy(dst, src, 16);
    }
}

static __always_inline void rw_tuple_of(struct rw_tuple_key *k, const struct rw_endpoints *ep,
                                        bool mirrored) {
    if (mirrored) {
        rw_addr_mapped(k->local_addr, ep->remote_addr, ep->family);
        rw_addr_mapped(k->remote_addr, ep->local_addr, ep->family);
        k->local_port = ep->remote_port;
        k->remote_port = ep->local_port;
    } else {
        rw_addr_mapped(k->local_addr, ep->local_addr, ep->family);
        rw_addr_mapped(k->remote_addr, ep->remote_addr, ep->family);
        k->local_port = ep->local_port;
        k->remote_port = ep->remote_port;
    }
}

/* ---- In-kernel filters ---- */

static __always_inline bool rw_filter_owner(const struct rw_owner *o) {
    if (cfg_filter_pid && o->pid != cfg_filter_pid) return false;
    if (cfg_filter_comm_on) {
        for (int i = 0; i < RW_COMM_LEN; i++) {
            if (o->comm[i] != cfg_filter_comm[i]) return false;
            if (!o->comm[i]) break;
        }
    }
    return true;
}

static __always_inline bool rw_filter_conn(const struct rw_endpoints *ep, __u32 netns,
                                           const struct sock *sk) {
    if (cfg_filter_port && ep->local_port != cfg_filter_port && ep->remote_port != cfg_filter_port)
        return false;
    if (cfg_filter_netns && netns != cfg_filter_netns) return false;
    if (cfg_filter_cgroup_level >= 0 &&
        (!sk || !rw_sock_in_cgroup(sk, cfg_filter_cgroup_id, cfg_filter_cgroup_level)))
        return false;
    return true;
}

/* Submit without waking the consumer unless enough data is waiting. */
static __always_inline void rw_submit(void *rec) {
    __u64 flags = bpf_ringbuf_query(&rw_events, BPF_RB_AVAIL_DATA) >= cfg_wakeup_bytes
                      ? BPF_RB_FORCE_WAKEUP
                      : BPF_RB_NO_WAKEUP;

    bpf_ringbuf_submit(rec, flags);
}

/* Submit a record that passed the filters, or discard and count it. */
static __always_inline void rw_submit_if(void *rec, bool keep) {
    if (keep) {
        rw_submit(rec);
    } else {
        bpf_ringbuf_discard(rec, BPF_RB_NO_WAKEUP);
        rw_count(RW_CNT_FILTERED);
    }
}

#endif /* RSTWATCH_SOCK_BPF_H */
