// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Defines the maps and configuration declared in maps.bpf.h; the other programs
 * of the trace object link against these. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#define RW_MAPS_DEFINE
#include "maps.bpf.h"

/* Layout version of records.h, readable by userspace from the object. */
const volatile __u32 rw_abi_version = RW_ABI_VERSION;

char LICENSE[] SEC("license") = "Dual BSD/GPL";
