// Reading what the BPF side leaves in maps and iterators: per-CPU counters and
// the seq-file output of a BPF iterator. Shared by the tracer and the enforcer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string_view>
#include <vector>

#include "event/decode.hpp"

namespace rstwatch {

// Sums a BPF_MAP_TYPE_PERCPU_ARRAY of u64 counters over every possible CPU:
// out[i] += the sum of entry i, for i < out.size(); an entry that cannot be
// read adds nothing. False (out untouched) when libbpf cannot tell how many
// CPUs are possible.
bool sum_percpu_counters(int map_fd, std::span<std::uint64_t> out);

// Runs the BPF iterator behind `link_fd` to its end: every byte it writes, in
// order. `what` names it in errors ("socket" -> "running the socket
// iterator"); throws what bpf_failure() makes of a failed create or read.
std::vector<std::uint8_t> read_iterator(int link_fd, std::string_view what);

// The same, decoding the output (a stream of records) as it is read, so that
// a large snapshot is never held whole. Throws on a malformed record.
void run_iterator(int link_fd, std::string_view what,
                  const std::function<void(const Record &)> &on_record);

} // namespace rstwatch
