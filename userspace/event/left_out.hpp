// A BPF program the running kernel refused and a command left out, and the
// status of each program for `rstwatch verify`: shared by
// the loader (userspace/bpf) and the formatters, so it includes nothing of libbpf.
#pragma once
#include <string>

namespace rstwatch {

struct LeftOutProgram {
    std::string program; // rw_enf_owners
    std::string section; // iter/task_file
    std::string lost;    // what the user loses without it
    std::string reason;  // the verifier's (or libbpf's) last word on it
};

// What became of one program a command asked for (`rstwatch verify`).
struct ProgramStatus {
    std::string program;
    std::string section;
    bool essential = true; // the command fails without it
    bool loaded = false;
    std::string lost;   // when not loaded: what the user loses
    std::string reason; // when not loaded: why
};

} // namespace rstwatch
