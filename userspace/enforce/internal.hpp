// Private to enforce/: names the loader, the pins and --status share.
#pragma once

#include <cstring>
#include <string>

namespace rstwatch::enforce_detail {

// Program names as the kernel stores them (at most 15 characters): how
// --status recognises our links among everybody's.
inline constexpr const char *kSockopsProg = "rw_enf_sockops";
inline constexpr const char *kClampProg = "rw_enf_clamp";
inline constexpr const char *kPinRoot = "/sys/fs/bpf/rstwatch/enforce";

inline std::string errno_text(int err) {
    return std::strerror(err < 0 ? -err : err);
}

// Link name (pin file) of a program.
inline const char *link_name_of(const std::string &prog_name) {
    if (prog_name == kSockopsProg) return "sockops";
    if (prog_name == kClampProg) return "setsockopt";
    return nullptr;
}

} // namespace rstwatch::enforce_detail
