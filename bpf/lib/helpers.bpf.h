/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Small helpers every BPF object shares (trace, enforce).
 *
 * Rule: no maps and no configuration of its own, only BPF helpers, CO-RE
 * reads and rstwatch/records.h, so any object may include it. Code that needs
 * the trace object's maps goes in sock.bpf.h; kernel-version differences go in
 * compat.bpf.h.
 */
#ifndef RSTWATCH_HELPERS_BPF_H
#define RSTWATCH_HELPERS_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>

#include "rstwatch/records.h"

/* The kernel copies at most one page of a setsockopt option into a
 * cgroup/setsockopt program's buffer (x86-64 and arm64 pages). */
#define RW_PAGE_SIZE 4096

/* The task on CPU as a socket's owner: only where that task is the caller
 * (connect(), listen(), setsockopt()), never in softirq. */
static __always_inline void rw_owner_from_current(struct rw_owner *o, __u32 how) {
    o->pid = bpf_get_current_pid_tgid() >> 32;
    o->uid = (__u32)bpf_get_current_uid_gid();
    bpf_get_current_comm(o->comm, sizeof(o->comm));
    o->how = how;
}

/* A task found by an iterator as a socket's owner: its process (tgid), real
 * uid and the process leader's name. */
static __always_inline void rw_owner_from_task(struct rw_owner *o, struct task_struct *task,
                                               __u32 how) {
    o->pid = BPF_CORE_READ(task, tgid);
    o->uid = BPF_CORE_READ(task, cred, uid.val);
    BPF_CORE_READ_STR_INTO(&o->comm, task, group_leader, comm);
    o->how = how;
}

/* A connection's age at `now_ns` into *age_ms, with RW_F_AGE_KNOWN in *flags;
 * nothing when its start is unknown (0: it predates rstwatch). */
static __always_inline void rw_set_age(__u64 now_ns, __u64 start_ns, __u64 *age_ms, __u32 *flags) {
    if (!start_ns) return;
    *age_ms = (now_ns - start_ns) / 1000000;
    *flags |= RW_F_AGE_KNOWN;
}

/* The entry for `key`, created from `init` first when there is none. Two
 * callers racing both see the one entry that won (BPF_NOEXIST). */
static __always_inline void *rw_lookup_or_init(void *map, const void *key, const void *init) {
    void *v = bpf_map_lookup_elem(map, key);

    if (v) return v;
    bpf_map_update_elem(map, key, init, BPF_NOEXIST);
    return bpf_map_lookup_elem(map, key);
}

#endif /* RSTWATCH_HELPERS_BPF_H */
