/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Kernel differences, in one place. Each "flavour" struct (name___suffix) is a
 * CO-RE view of an older layout; bpf_core_field_exists() picks the right one at
 * load time, so one object runs on every supported kernel (see docs/kernels.md).
 */
#ifndef RSTWATCH_COMPAT_BPF_H
#define RSTWATCH_COMPAT_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>

/*
 * Two ways to read kernel memory, chosen per .bpf.c file:
 * - RW_DIRECT_READS (tp_btf handlers, whose socket argument is a trusted BTF
 *   pointer): plain CO-RE-relocated loads, which the verifier turns into
 *   exception-protected loads, so no helper call per field on the hot path;
 * - otherwise (iterators, fd tables, sockops, syscall tracepoints, where the
 *   pointer was itself read from memory): bpf_probe_read_kernel per field.
 * Casting a struct sock * to struct tcp_sock * is fine for probe reads but not
 * for the verifier's BTF type tracking, hence RW_TCP_SOCK (may be NULL).
 */
#ifdef RW_DIRECT_READS
#define RW_READ(src, ...) (___arrow(src, __VA_ARGS__))
#define RW_READ_INTO(dst, src, ...)                                                                \
    __builtin_memcpy((dst), &(___arrow(src, __VA_ARGS__)), sizeof(*(dst)))
#define RW_READ_BITFIELD(src, field) BPF_CORE_READ_BITFIELD(src, field)
#define RW_TCP_SOCK(sk) ((const struct tcp_sock *)bpf_skc_to_tcp_sock((void *)(sk)))
#else
#define RW_READ(src, ...) BPF_CORE_READ(src, __VA_ARGS__)
#define RW_READ_INTO(dst, src, ...) BPF_CORE_READ_INTO(dst, src, __VA_ARGS__)
#define RW_READ_BITFIELD(src, field) BPF_CORE_READ_BITFIELD_PROBED(src, field)
#define RW_TCP_SOCK(sk) ((const struct tcp_sock *)(sk))
#endif

/*
 * Pointer fields (sk->skc_net, skb->dev, skb->head) are probe-read in both modes.
 * A direct load of a pointer field makes the verifier (6.x) ask whether the
 * field is trusted or RCU-protected: up to four look-ups of
 * "<type>__safe_trusted"-style names, each a linear scan of the kernel's
 * ~126,000 BTF types, at every such load on every path it walks. That was
 * about half of rstwatch's start-up CPU (docs/PERFORMANCE.md); a probe read
 * costs ~15 ns when the program runs. Reads through such a pointer are probe
 * reads too (BPF_CORE_READ): to the verifier it is a plain number.
 */
#define RW_READ_PTR(src, ...) BPF_CORE_READ(src, __VA_ARGS__)

/* Before 5.15 ("bpf, cgroups: Fix cgroup v2 fallback on v1/v2 mixed mode")
 * sock_cgroup_data was a union whose `val` holds the cgroup pointer when bit 0
 * is clear. */
struct sock_cgroup_data___old {
    __u64 val;
} __attribute__((preserve_access_index));

/* Until "cgroup: Replace cgroup->ancestor_ids[] with ->ancestors[]" a cgroup
 * kept the ids of its ancestors, not pointers. */
struct cgroup___old {
    int level;
    __u64 ancestor_ids[];
} __attribute__((preserve_access_index));

/* Kernels before 6.0 stored net.ipv4.tcp_keepalive_probes as an int, later as u8;
 * the PROBED bitfield reader copes with either size. `net` came from
 * RW_READ_PTR: probe reads only. */
static __always_inline __u32 rw_read_keepalive_probes_sysctl(const struct net *net) {
    /* Relative to struct net, so netns_ipv4 is no CO-RE type of its own. */
    return (__u32)BPF_CORE_READ_BITFIELD_PROBED(net, ipv4.sysctl_tcp_keepalive_probes);
}

/* cgroup v2 id of the cgroup a socket was created in. */
static __always_inline __u64 rw_sock_cgroup_id(const struct sock *sk) {
    struct cgroup *cgrp;

    if (bpf_core_field_exists(struct sock_cgroup_data, cgroup)) {
        cgrp = BPF_CORE_READ(sk, sk_cgrp_data.cgroup);
    } else {
        struct sock_cgroup_data___old *old = (void *)&sk->sk_cgrp_data;
        __u64 val = BPF_CORE_READ(old, val);

        if (val & 1) return 0; /* v1 classid/prioidx data, no v2 pointer */
        cgrp = (struct cgroup *)val;
    }
    if (!cgrp) return 0;
    return BPF_CORE_READ(cgrp, kn, id);
}

/* Is the socket's cgroup `target_id` (at `level`) or one of its descendants? */
static __always_inline bool rw_sock_in_cgroup(const struct sock *sk, __u64 target_id, int level) {
    struct cgroup *cgrp;

    if (bpf_core_field_exists(struct sock_cgroup_data, cgroup)) {
        cgrp = BPF_CORE_READ(sk, sk_cgrp_data.cgroup);
    } else {
        struct sock_cgroup_data___old *old = (void *)&sk->sk_cgrp_data;
        __u64 val = BPF_CORE_READ(old, val);

        cgrp = (val & 1) ? NULL : (struct cgroup *)val;
    }
    if (!cgrp || level < 0 || level > 255) return false;
    if (BPF_CORE_READ(cgrp, level) < level) return false;
    if (bpf_core_field_exists(struct cgroup, ancestors)) {
        struct cgroup *anc = NULL;

        bpf_core_read(&anc, sizeof(anc), &cgrp->ancestors[level]);
        return anc && BPF_CORE_READ(anc, kn, id) == target_id;
    } else {
        struct cgroup___old *old = (void *)cgrp;
        __u64 id = 0;

        bpf_core_read(&id, sizeof(id), &old->ancestor_ids[level]);
        return id == target_id;
    }
}

#endif /* RSTWATCH_COMPAT_BPF_H */
