# Compiles CO-RE BPF programs and generates libbpf skeletons.
#
#   rstwatch_bpf_skeleton(<name> SOURCES dir/a.bpf.c dir/b.bpf.c ...)
#
# Sources are relative to bpf/; bpf/lib/ (the helpers every program shares) and
# include/ (rstwatch/records.h, the one header shared with userspace) are on
# the include path.
#
# compiles each source with clang -target bpf, links them into one object with
# `bpftool gen object` (maps declared extern in one file resolve to the definition
# in another), generates <name>.skel.h, and defines the INTERFACE target
# <name>_skel that userspace links to get the header on its include path.
# vmlinux.h is dumped once from the build machine's BTF into the build tree.

find_program(RW_CLANG NAMES clang clang-19 clang-16 clang-14 REQUIRED)
find_program(RW_BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin /usr/local/sbin REQUIRED)
set(RW_VMLINUX_BTF "/sys/kernel/btf/vmlinux" CACHE FILEPATH
    "BTF used to generate vmlinux.h (the running kernel's by default)")
if(NOT EXISTS "${RW_VMLINUX_BTF}")
    message(FATAL_ERROR "No BTF at ${RW_VMLINUX_BTF}: the kernel needs CONFIG_DEBUG_INFO_BTF=y, "
                        "or pass -DRW_VMLINUX_BTF=<file> pointing at a vmlinux with BTF.")
endif()

set(RW_BPF_GEN_DIR "${CMAKE_BINARY_DIR}/bpf")
file(MAKE_DIRECTORY "${RW_BPF_GEN_DIR}")

add_custom_command(
    OUTPUT "${RW_BPF_GEN_DIR}/vmlinux.h"
    COMMAND "${RW_BPFTOOL}" btf dump file "${RW_VMLINUX_BTF}" format c > "${RW_BPF_GEN_DIR}/vmlinux.h.tmp"
    COMMAND ${CMAKE_COMMAND} -E rename "${RW_BPF_GEN_DIR}/vmlinux.h.tmp" "${RW_BPF_GEN_DIR}/vmlinux.h"
    COMMENT "Generating vmlinux.h from ${RW_VMLINUX_BTF}"
    VERBATIM)
add_custom_target(rw_vmlinux_h DEPENDS "${RW_BPF_GEN_DIR}/vmlinux.h")

set(RW_BPF_CFLAGS -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_x86 -Wall -Wno-unused-function
    -I${RW_BPF_GEN_DIR} -I${PROJECT_SOURCE_DIR}/include -I${PROJECT_SOURCE_DIR}/bpf/lib)

function(rstwatch_bpf_skeleton name)
    cmake_parse_arguments(ARG "" "" "SOURCES" ${ARGN})
    set(objects)
    foreach(src IN LISTS ARG_SOURCES)
        get_filename_component(stem "${src}" NAME_WE)
        set(obj "${RW_BPF_GEN_DIR}/${name}.${stem}.o")
        add_custom_command(
            OUTPUT "${obj}"
            COMMAND "${RW_CLANG}" ${RW_BPF_CFLAGS} -MD -MF "${obj}.d" -c "${PROJECT_SOURCE_DIR}/bpf/${src}" -o "${obj}"
            DEPENDS "${PROJECT_SOURCE_DIR}/bpf/${src}" "${RW_BPF_GEN_DIR}/vmlinux.h"
            DEPFILE "${obj}.d"
            COMMENT "BPF ${src}"
            VERBATIM)
        list(APPEND objects "${obj}")
    endforeach()

    set(linked "${RW_BPF_GEN_DIR}/${name}.bpf.o")
    set(skel "${RW_BPF_GEN_DIR}/${name}.skel.h")
    add_custom_command(
        OUTPUT "${linked}" "${skel}"
        COMMAND "${RW_BPFTOOL}" gen object "${linked}" ${objects}
        COMMAND "${RW_BPFTOOL}" gen skeleton "${linked}" name "${name}_bpf" > "${skel}.tmp"
        COMMAND ${CMAKE_COMMAND} -E rename "${skel}.tmp" "${skel}"
        DEPENDS ${objects}
        COMMENT "Linking BPF object and skeleton ${name}"
        VERBATIM)
    add_custom_target(${name}_skel_gen DEPENDS "${skel}")
    # vmlinux.h is an input of every skeleton: without this ordering each
    # skeleton target runs its own copy of the dump rule, and two skeletons
    # built in parallel race on vmlinux.h.tmp (a clean -j2 build failed).
    add_dependencies(${name}_skel_gen rw_vmlinux_h)
    add_library(${name}_skel INTERFACE)
    target_include_directories(${name}_skel INTERFACE "${RW_BPF_GEN_DIR}")
    add_dependencies(${name}_skel ${name}_skel_gen)
    set_property(GLOBAL APPEND PROPERTY RW_BPF_OBJECTS "${linked}")
endfunction()
