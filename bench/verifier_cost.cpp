// Where loading a BPF object spends its time: loads the object (its .rodata
// defaults, every program) with BPF_LOG_STATS only, so the log costs nothing,
// and prints per program the verification time and the instructions the
// verifier processed; then, interleaved, the same load without programs (kernel
// BTF parse + map creation) and without programs with every map at its minimum
// size (BTF parse alone, roughly), and libbpf's parse of the kernel BTF alone.
// Differences between them give the phases of docs/PERFORMANCE.md.
//
//   sudo build/bench/rw_verifier_cost build/bpf/trace.bpf.o [--reps 5]
//
// Plain libbpf, no project libraries: the figure behind docs/PERFORMANCE.md's
// start-up breakdown (verification per program).
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <algorithm>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <ctime>
#include <vector>

namespace {

// CPU time of this thread (user + system, where the verifier runs): robust to
// the other jobs of a shared machine, unlike wall-clock time.
struct Clock {
    using time_point = double;
    static double now() {
        timespec ts{};
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return double(ts.tv_sec) * 1e3 + double(ts.tv_nsec) / 1e6;
    }
};

double ms_since(Clock::time_point t0) {
    return Clock::now() - t0;
}

struct Stats {
    std::vector<double> verify_ms;
    std::vector<long> processed;
};

int quiet(enum libbpf_print_level, const char *, va_list) {
    return 0;
}

} // namespace

int main(int argc, char **argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s OBJECT.bpf.o [--reps N]\n", argv[0]);
        return 2;
    }
    const char *path = argv[1];
    int reps = 5;
    for (int i = 2; i + 1 < argc; ++i)
        if (std::strcmp(argv[i], "--reps") == 0) reps = std::max(1, std::atoi(argv[i + 1]));
    libbpf_set_print(quiet);

    std::map<std::string, Stats> per_prog;
    std::vector<double> open_ms, load_ms, noprog_ms, tiny_ms, btf_ms;
    // Load without programs; `tiny`: every map at its smallest size too.
    std::map<std::string, std::vector<double>> only_ms;
    // Load with only `only` (nullptr: no program); `tiny`: every map at its
    // smallest size too.
    auto load_without_programs = [&](bool tiny, const char *only = nullptr) {
        bpf_object *obj = bpf_object__open_file(path, nullptr);
        if (!obj) return -1.0;
        bpf_program *p;
        bpf_object__for_each_program(p, obj)
            bpf_program__set_autoload(p, only && std::strcmp(only, bpf_program__name(p)) == 0);
        bpf_map *m;
        if (tiny) bpf_object__for_each_map(m, obj) {
                if (bpf_map__type(m) == BPF_MAP_TYPE_RINGBUF)
                    bpf_map__set_max_entries(m, 4096);
                else if (bpf_map__type(m) != BPF_MAP_TYPE_ARRAY &&
                         bpf_map__type(m) != BPF_MAP_TYPE_PERCPU_ARRAY)
                    bpf_map__set_max_entries(m, 1);
            }
        auto t = Clock::now();
        int err = bpf_object__load(obj);
        double ms = ms_since(t);
        bpf_object__close(obj);
        return err ? -1.0 : ms;
    };
    for (int rep = 0; rep < reps; ++rep) {
        {
            auto t = Clock::now();
            btf *v = btf__load_vmlinux_btf();
            btf_ms.push_back(ms_since(t));
            btf__free(v);
        }
        auto t0 = Clock::now();
        bpf_object *obj = bpf_object__open_file(path, nullptr);
        if (!obj) {
            std::perror("bpf_object__open_file");
            return 1;
        }
        open_ms.push_back(ms_since(t0));
        std::map<std::string, std::vector<char>> logs;
        bpf_program *p;
        bpf_object__for_each_program(p, obj) {
            auto &buf = logs[bpf_program__name(p)];
            buf.assign(1 << 16, '\0');
            bpf_program__set_log_level(p, 4); // BPF_LOG_STATS only
            bpf_program__set_log_buf(p, buf.data(), buf.size());
        }
        auto t1 = Clock::now();
        if (int err = bpf_object__load(obj)) {
            std::fprintf(stderr, "load failed: %s\n", std::strerror(-err));
            return 1;
        }
        load_ms.push_back(ms_since(t1));
        for (auto &[name, buf] : logs) {
            const char *vt = std::strstr(buf.data(), "verification time ");
            const char *pr = std::strstr(buf.data(), "processed ");
            if (vt) per_prog[name].verify_ms.push_back(std::atof(vt + 19) / 1000.0);
            if (pr) per_prog[name].processed.push_back(std::atol(pr + 10));
        }
        bpf_object__close(obj);
        noprog_ms.push_back(load_without_programs(false));
        tiny_ms.push_back(load_without_programs(true));
        for (auto &[name, s] : per_prog)
            only_ms[name].push_back(load_without_programs(true, name.c_str()));
    }
    auto med = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v.empty() ? 0.0 : v[v.size() / 2];
    };
    std::printf("| program | kernel's verification time, ms | CPU ms to relocate + load it "
                "alone | processed insns |\n|---|---|---|---|\n");
    double sum = 0, sum_only = 0;
    for (auto &[name, s] : per_prog) {
        double m = med(s.verify_ms), o = med(only_ms[name]) - med(tiny_ms);
        sum += m;
        sum_only += o;
        std::printf("| %s | %.1f | %.1f | %ld |\n", name.c_str(), m, o,
                    s.processed.empty() ? 0L : s.processed.back());
    }
    std::printf("| **all (sum)** | %.1f | %.1f | |\n\n", sum, sum_only);
    std::printf("| phase (CPU ms, medians of %d) | |\n|---|---|\n", reps);
    std::printf("| open (ELF) | %.1f |\n", med(open_ms));
    std::printf("| btf__load_vmlinux_btf alone | %.1f |\n", med(btf_ms));
    std::printf("| load, no programs, maps at minimum size | %.1f |\n", med(tiny_ms));
    std::printf("| load, no programs, default map sizes | %.1f |\n", med(noprog_ms));
    std::printf("| load, everything | %.1f |\n", med(load_ms));
    std::printf("| = map creation at default sizes | %.1f |\n", med(noprog_ms) - med(tiny_ms));
    std::printf("| = CO-RE relocation + verification + feature probes | %.1f |\n",
                med(load_ms) - med(noprog_ms));
    return 0;
}
