// Private to bpf/: what kernel.cpp and programs.cpp both say about BTF.
#pragma once

namespace rstwatch::bpf_detail {

inline constexpr const char *kVmlinuxBtf = "/sys/kernel/btf/vmlinux";
inline constexpr const char *kBtfFix =
    "rstwatch's CO-RE programs need a kernel built with CONFIG_DEBUG_INFO_BTF=y (Debian, "
    "Ubuntu, Fedora and RHEL kernels since 2021 are); boot such a kernel, or install your "
    "distribution's kernel package";

} // namespace rstwatch::bpf_detail
