// rw_report_bench: throughput of `rstwatch report` on one input, measured from
// outside like a user would see it: the real binary, its output discarded
// except the report_summary line (for the line count), wall time, CPU time
// and peak RSS of the child from wait4(2).
//
//   rw_report_bench --rstwatch build/rstwatch --input /tmp/fleet.ndjson [--runs 3] [--cpu 1]
//
// Prints one line per run and the best run; --expect-lines N and
// --max-malformed N make it a check (exit 1 on mismatch) for the smoke test.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sched.h>
#include <string>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

namespace {

struct Run {
    double wall_s = 0, cpu_s = 0;
    long maxrss_kb = 0;
    unsigned long long lines = 0, bytes = 0, malformed = 0;
    int status = 0;
};

double now_s() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
}

// "key":N from the report_summary line.
unsigned long long field(const std::string &line, const char *key) {
    std::string k = std::string("\"") + key + "\":";
    auto pos = line.find(k);
    return pos == std::string::npos ? 0 : std::strtoull(line.c_str() + pos + k.size(), nullptr, 10);
}

Run run_once(const std::string &bin, const std::string &input, int cpu) {
    int pipefd[2];
    if (pipe(pipefd) != 0) {
        std::perror("pipe");
        std::exit(3);
    }
    const double t0 = now_s();
    pid_t pid = fork();
    if (pid == 0) {
        if (cpu >= 0) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(cpu, &set);
            sched_setaffinity(0, sizeof set, &set);
        }
        dup2(pipefd[1], STDOUT_FILENO);
        close(pipefd[0]);
        close(pipefd[1]);
        execl(bin.c_str(), bin.c_str(), "report", input.c_str(), (char *)nullptr);
        std::perror(bin.c_str());
        _exit(127);
    }
    close(pipefd[1]);
    // Keep only the summary line; the rest (one line per process...) is small.
    std::string out, summary;
    char buf[65536];
    for (;;) {
        ssize_t n = read(pipefd[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        out.append(buf, std::size_t(n));
        std::size_t nl;
        while ((nl = out.find('\n')) != std::string::npos) {
            if (out.find("\"event\":\"report_summary\"") < nl) summary = out.substr(0, nl);
            out.erase(0, nl + 1);
        }
    }
    close(pipefd[0]);
    Run r;
    rusage ru{};
    wait4(pid, &r.status, 0, &ru);
    r.wall_s = now_s() - t0;
    r.cpu_s = double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
              double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    r.maxrss_kb = ru.ru_maxrss;
    r.lines = field(summary, "lines");
    r.bytes = field(summary, "bytes");
    r.malformed = field(summary, "malformed");
    return r;
}

[[noreturn]] void usage() {
    std::fprintf(stderr, "usage: rw_report_bench --rstwatch BIN --input FILE [--runs N] [--cpu N] "
                         "[--expect-lines N] [--max-malformed N]\n");
    std::exit(2);
}

} // namespace

int main(int argc, char **argv) {
    std::string bin, input;
    int runs = 1, cpu = -1;
    long long expect_lines = -1, max_malformed = -1;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) usage();
            return argv[++i];
        };
        if (a == "--rstwatch")
            bin = next();
        else if (a == "--input")
            input = next();
        else if (a == "--runs")
            runs = std::stoi(next());
        else if (a == "--cpu")
            cpu = std::stoi(next());
        else if (a == "--expect-lines")
            expect_lines = std::stoll(next());
        else if (a == "--max-malformed")
            max_malformed = std::stoll(next());
        else
            usage();
    }
    if (bin.empty() || input.empty() || runs < 1) usage();
    struct stat st {};
    if (stat(input.c_str(), &st) != 0) {
        std::perror(input.c_str());
        return 2;
    }
    std::printf("input %s: %.1f MB on disk; rstwatch report, %s\n", input.c_str(),
                double(st.st_size) / 1e6,
                cpu >= 0 ? ("pinned to CPU " + std::to_string(cpu)).c_str() : "not pinned");
    Run best;
    int rc = 0;
    for (int i = 0; i < runs; ++i) {
        Run r = run_once(bin, input, cpu);
        if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0) {
            std::fprintf(stderr, "run %d: rstwatch report failed (status %d)\n", i + 1, r.status);
            return 1;
        }
        std::printf("run %d: %llu lines, %.1f MB in %.3f s wall, %.3f s CPU: %.0f lines/s, "
                    "%.1f MB/s wall; %.1f MB/s per CPU-second; peak RSS %.1f MB\n",
                    i + 1, r.lines, double(r.bytes) / 1e6, r.wall_s, r.cpu_s,
                    double(r.lines) / r.wall_s, double(r.bytes) / 1e6 / r.wall_s,
                    double(r.bytes) / 1e6 / r.cpu_s, double(r.maxrss_kb) / 1024.0);
        if (i == 0 || r.wall_s < best.wall_s) best = r;
        if (expect_lines >= 0 && r.lines != (unsigned long long)expect_lines) {
            std::fprintf(stderr, "expected %lld lines, report counted %llu\n", expect_lines,
                         r.lines);
            rc = 1;
        }
        if (max_malformed >= 0 && r.malformed > (unsigned long long)max_malformed) {
            std::fprintf(stderr, "%llu malformed lines (max %lld)\n", r.malformed, max_malformed);
            rc = 1;
        }
    }
    // Wall time is what a user waits; CPU time is the single core's work and
    // stays meaningful when other jobs share the machine.
    std::printf("best (by wall): %.0f lines/s, %.1f MB/s wall, %.1f MB/s per CPU-second "
                "(1 MB = 10^6 bytes), peak RSS %.1f MB\n",
                double(best.lines) / best.wall_s, double(best.bytes) / 1e6 / best.wall_s,
                double(best.bytes) / 1e6 / best.cpu_s, double(best.maxrss_kb) / 1024.0);
    return rc;
}
