/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Reading a TCP socket's identity and keepalive settings: pure CO-RE readers
 * with no maps, shared by every BPF object (trace, enforce).
 *
 * The includer declares `const volatile __u32 cfg_hz_fallback` first (the
 * loader's CONFIG_HZ, used when the kernel config is not readable): maps.bpf.h
 * does for the trace object, enforce.bpf.c for its own.
 */
#ifndef RSTWATCH_SOCK_READ_BPF_H
#define RSTWATCH_SOCK_READ_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "compat.bpf.h"
#include "rstwatch/records.h"

/* UAPI constants that vmlinux.h (BTF) does not carry. */
#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define SOL_SOCKET 1
#define SO_KEEPALIVE 9
#define TCP_KEEPIDLE 4
#define TCP_KEEPINTVL 5
#define TCP_KEEPCNT 6
#define TCP_USER_TIMEOUT 18
#define ETIMEDOUT 110
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define RW_MAX_TCP_KEEPIDLE 32767 /* MAX_TCP_KEEPIDLE, MAX_TCP_KEEPINTVL */
#define RW_MAX_TCP_KEEPCNT 127    /* MAX_TCP_KEEPCNT */

extern unsigned long CONFIG_HZ __kconfig __weak;

static __always_inline __u32 rw_hz(void) {
    return CONFIG_HZ ? (__u32)CONFIG_HZ : cfg_hz_fallback;
}

static __always_inline __u32 rw_jiffies_to_ms(__u32 j) {
    return (__u32)(((__u64)j * 1000) / rw_hz());
}

/* sk_fullsock(): timewait and request sockets share only sock_common. */
static __always_inline bool rw_is_fullsock(__u8 state) {
    return state != TCP_TIME_WAIT && state != TCP_NEW_SYN_RECV;
}

static __always_inline bool rw_is_tcp(const struct sock *sk) {
    return RW_READ(sk, sk_protocol) == IPPROTO_TCP;
}

static __always_inline __u32 rw_sock_netns(const struct sock *sk) {
    return RW_READ_PTR(sk, __sk_common.skc_net.net, ns.inum);
}

/* Local port of a socket. A socket aborted with SO_LINGER 0 has already released
 * its port (skc_num == 0) when the RST goes out; inet_sport survives. */
static __always_inline __u16 rw_local_port(const struct sock *sk, bool fullsock) {
    if (fullsock) {
        const struct tcp_sock *tp = RW_TCP_SOCK(sk);

        if (tp) {
            __u16 p = bpf_ntohs(RW_READ(tp, inet_conn.icsk_inet.inet_sport));

            if (p) return p;
        }
    }
    return RW_READ(sk, __sk_common.skc_num);
}

static __always_inline void rw_read_endpoints(const struct sock *sk, struct rw_endpoints *ep) {
    __u16 family = RW_READ(sk, __sk_common.skc_family);
    __u8 state = RW_READ(sk, __sk_common.skc_state);

    ep->family = family;
    ep->state = state;
    ep->local_port = rw_local_port(sk, rw_is_fullsock(state));
    ep->remote_port = bpf_ntohs(RW_READ(sk, __sk_common.skc_dport));
    if (family == AF_INET6) {
        RW_READ_INTO(&ep->local_addr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
        RW_READ_INTO(&ep->remote_addr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
    } else {
        RW_READ_INTO((__u32 *)ep->local_addr, sk, __sk_common.skc_rcv_saddr);
        RW_READ_INTO((__u32 *)ep->remote_addr, sk, __sk_common.skc_daddr);
    }
}

static __always_inline bool rw_keepopen(const struct sock *sk) {
    unsigned long flags = RW_READ(sk, __sk_common.skc_flags);

    return (flags >> bpf_core_enum_value(enum sock_flags, SOCK_KEEPOPEN)) & 1;
}

/* Effective keepalive settings: the per-socket override when the application
 * set one (TCP_KEEPIDLE/INTVL/CNT), else the sysctl of the socket's own netns. */
static __always_inline void rw_read_keepalive(const struct sock *sk, struct rw_keepalive *ka) {
    const struct tcp_sock *tp = RW_TCP_SOCK(sk);
    const struct net *net = RW_READ_PTR(sk, __sk_common.skc_net.net);
    __u32 hz = rw_hz();
    __u32 v;

    ka->enabled = rw_keepopen(sk);
    if (!tp) return;

    v = RW_READ(tp, keepalive_time);
    if (v)
        ka->from_socket |= RW_KA_IDLE_SOCKET;
    else
        v = BPF_CORE_READ(net, ipv4.sysctl_tcp_keepalive_time);
    ka->idle_s = v / hz;

    v = RW_READ(tp, keepalive_intvl);
    if (v)
        ka->from_socket |= RW_KA_INTVL_SOCKET;
    else
        v = BPF_CORE_READ(net, ipv4.sysctl_tcp_keepalive_intvl);
    ka->interval_s = v / hz;

    v = RW_READ(tp, keepalive_probes);
    if (v)
        ka->from_socket |= RW_KA_PROBES_SOCKET;
    else
        v = rw_read_keepalive_probes_sysctl(net);
    ka->probes = v;

    ka->user_timeout_ms = RW_READ(tp, inet_conn.icsk_user_timeout);
}

/* Keepalive options visible in the socket's own state (set before we saw it). */
static __always_inline __u16 rw_opts_from_sock(const struct sock *sk) {
    const struct tcp_sock *tp = RW_TCP_SOCK(sk);
    __u16 opts = 0;

    if (rw_keepopen(sk)) opts |= RW_OPT_SO_KEEPALIVE;
    if (!tp) return opts;
    if (RW_READ(tp, keepalive_time)) opts |= RW_OPT_TCP_KEEPIDLE;
    if (RW_READ(tp, keepalive_intvl)) opts |= RW_OPT_TCP_KEEPINTVL;
    if (RW_READ(tp, keepalive_probes)) opts |= RW_OPT_TCP_KEEPCNT;
    if (RW_READ(tp, inet_conn.icsk_user_timeout)) opts |= RW_OPT_TCP_USER_TIMEOUT;
    return opts;
}

#endif /* RSTWATCH_SOCK_READ_BPF_H */
