#include "bpf/maps.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cerrno>
#include <cstring>
#include <string>
#include <unistd.h>

#include "bpf/bpf_util.hpp"

namespace rstwatch {

namespace {

// The one read loop: on_chunk gets the bytes read so far that it has not
// consumed (its return value: how many it consumed).
void drain_iterator(int link_fd, std::string_view what,
                    const std::function<std::size_t(const std::uint8_t *, std::size_t)> &on_chunk) {
    const std::string name(what);
    UniqueFd fd(bpf_iter_create(link_fd));
    if (!fd) throw bpf_failure("running the " + name + " iterator", errno);
    std::vector<std::uint8_t> buf(1 << 16);
    std::size_t have = 0;
    for (;;) {
        ssize_t n = read(fd.get(), buf.data() + have, buf.size() - have);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            throw bpf_failure("reading the " + name + " iterator", errno);
        }
        if (n == 0) break;
        have += std::size_t(n);
        std::size_t used = on_chunk(buf.data(), have);
        std::memmove(buf.data(), buf.data() + used, have - used);
        have -= used;
    }
}

} // namespace

bool sum_percpu_counters(int map_fd, std::span<std::uint64_t> out) {
    int ncpu = libbpf_num_possible_cpus();
    if (ncpu <= 0) return false;
    std::vector<std::uint64_t> per_cpu(std::size_t(ncpu), 0);
    for (std::uint32_t i = 0; i < out.size(); ++i) {
        if (bpf_map_lookup_elem(map_fd, &i, per_cpu.data()) != 0) continue;
        for (auto v : per_cpu)
            out[i] += v;
    }
    return true;
}

std::vector<std::uint8_t> read_iterator(int link_fd, std::string_view what) {
    std::vector<std::uint8_t> out;
    drain_iterator(link_fd, what, [&](const std::uint8_t *p, std::size_t n) {
        out.insert(out.end(), p, p + n);
        return n;
    });
    return out;
}

void run_iterator(int link_fd, std::string_view what,
                  const std::function<void(const Record &)> &on_record) {
    std::string why;
    drain_iterator(link_fd, what, [&](const std::uint8_t *p, std::size_t n) {
        std::size_t used = decode_stream(p, n, on_record, &why);
        if (!why.empty())
            throw Error(Exit::runtime,
                        "malformed " + std::string(what) + " iterator record: " + why);
        return used;
    });
}

} // namespace rstwatch
