// What the running kernel's BTF says, for output: plain data, filled by
// bpf/bpf_util.hpp's probe_kernel() (the only part that needs libbpf).
#pragma once

#include <string>
#include <vector>

namespace rstwatch {

// Not needed to load (the BPF side decides with CO-RE). Parsing BTF takes
// ~10 ms, so callers run probe_kernel() on a second thread while libbpf loads
// the programs.
struct KernelFacts {
    std::string release;
    // tcp_send_reset passes `enum sk_rst_reason` (6.10+).
    bool rst_reason_arg = false;
    // sk_rst_reason value -> name without the SK_RST_REASON_ prefix.
    std::vector<std::string> rst_reason_names;
};

} // namespace rstwatch
