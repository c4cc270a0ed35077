// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Every TCP socket held in a task's fd table, from the kernel's own tables (no
 * /proc parsing). Two uses, chosen by .bss flags before each run:
 * - seeding (iter_seed): owners of sockets that existed before rstwatch started;
 * - snapshots (iter_snapshot): one struct rw_snapshot per (process, fd) for
 *   `rstwatch audit` and the end-of-session summary.
 * The iterator visits each process once (threads sharing the fd table are
 * skipped by the kernel), so a socket inherited across fork() is listed once
 * per process that holds it.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "sock.bpf.h"

#define SOCK_STREAM 1

static __always_inline void rw_seed(const struct sock *sk, const struct rw_owner *owner,
                                    __u8 state) {
    __u64 key = (__u64)sk;

    if (state == TCP_LISTEN) {
        struct rw_listener_key lk = rw_listener_key_of(rw_sock_netns(sk), rw_local_port(sk, true));

        bpf_map_update_elem(&rw_listeners, &lk, owner, BPF_NOEXIST);
        return;
    }
    if (state == TCP_CLOSE) return;
    {
        struct rw_sock_info info = {};
        struct rw_endpoints ep = {};
        struct rw_tuple_key tk = {};

        info.owner = *owner;
        info.owner.cgroup_id = rw_sock_cgroup_id(sk);
        info.opts = rw_opts_from_sock(sk);
        if (info.opts & RW_OPT_SO_KEEPALIVE) info.flags |= RW_F_KA_EVER;
        if (state != TCP_SYN_SENT && state != TCP_SYN_RECV) info.flags |= RW_F_ESTABLISHED;
        /* The first holder found wins: usually the parent of a fork. */
        bpf_map_update_elem(&rw_socks, &key, &info, BPF_NOEXIST);
        if (info.flags & RW_F_ESTABLISHED) {
            rw_read_endpoints(sk, &ep);
            rw_tuple_of(&tk, &ep, false);
            bpf_map_update_elem(&rw_tuples, &tk, &ep.family, BPF_NOEXIST);
        }
    }
}

SEC("iter/task_file")
int rw_iter_sockets(struct bpf_iter__task_file *ctx) {
    struct seq_file *seq = ctx->meta->seq;
    struct task_struct *task = ctx->task;
    struct file *file = ctx->file;
    struct rw_snapshot snap = {};
    struct socket *sock;
    struct sock *sk;
    __u16 family;
    __u8 state;

    if (!task || !file) return 0;
    if ((BPF_CORE_READ(file, f_inode, i_mode) & S_IFMT) != S_IFSOCK) return 0;
    sock = BPF_CORE_READ(file, private_data);
    sk = BPF_CORE_READ(sock, sk);
    if (!sk || BPF_CORE_READ(sock, type) != SOCK_STREAM || !rw_is_tcp(sk)) return 0;
    family = BPF_CORE_READ(sk, __sk_common.skc_family);
    if (family != AF_INET && family != AF_INET6) return 0;
    state = BPF_CORE_READ(sk, __sk_common.skc_state);

    rw_owner_from_task(&snap.owner, task, RW_OWNER_SEEDED);
    if (iter_seed) rw_seed(sk, &snap.owner, state);
    if (!iter_snapshot) return 0;

    snap.hdr.type = RW_REC_SNAPSHOT;
    snap.hdr.size = sizeof(snap);
    snap.hdr.ts_ns = bpf_ktime_get_ns();
    snap.fd = ctx->fd;
    snap.sock_id = (__u64)sk;
    snap.owner.cgroup_id = rw_sock_cgroup_id(sk);
    rw_read_endpoints(sk, &snap.ep);
    if (state == TCP_LISTEN) {
        snap.flags |= RW_F_LISTENER;
        snap.tm.netns = rw_sock_netns(sk);
    } else {
        snap.flags |= RW_F_FULLSOCK;
        rw_read_keepalive(sk, &snap.ka);
        rw_read_timing(sk, true, &snap.tm, &snap.flags);
        {
            __u64 key = (__u64)sk;
            struct rw_sock_info *info = bpf_map_lookup_elem(&rw_socks, &key);

            if (info) rw_set_age(snap.hdr.ts_ns, info->start_ns, &snap.tm.age_ms, &snap.flags);
            if (snap.ka.enabled || (info && (info->flags & RW_F_KA_EVER)))
                snap.flags |= RW_F_KA_EVER;
        }
    }
    if (bpf_seq_write(seq, &snap, sizeof(snap))) rw_count(RW_CNT_SNAPSHOT_SHORT);
    return 0;
}
