#include "event/decode.hpp"

#include <cstring>
#include <sys/socket.h>

namespace rstwatch {

namespace {

bool fail(std::string *why, const char *msg) {
    if (why) *why = msg;
    return false;
}

bool valid_endpoints(const rw_endpoints &ep, std::string *why) {
    if (ep.family != 0 && ep.family != AF_INET && ep.family != AF_INET6)
        return fail(why, "unknown address family");
    if (ep.state > 13) return fail(why, "unknown TCP state");
    return true;
}

// comm comes from the kernel NUL-padded; force termination so that a
// malformed record can never make us read past the array.
void terminate(rw_owner &o) {
    o.comm[RW_COMM_LEN - 1] = '\0';
}

std::size_t size_of_type(std::uint16_t type) {
    switch (type) {
    case RW_REC_RESET:
        return sizeof(rw_reset);
    case RW_REC_SOCKOPT:
        return sizeof(rw_sockopt);
    case RW_REC_CLOSE:
        return sizeof(rw_close);
    case RW_REC_ENFORCE:
        return sizeof(rw_enforce);
    case RW_REC_SNAPSHOT:
        return sizeof(rw_snapshot);
    }
    return 0;
}

template <class T> bool load(const void *data, std::size_t size, T &out, std::string *why) {
    if (size != sizeof(T)) return fail(why, "record size does not match its type");
    std::memcpy(&out, data, sizeof(T));
    if (out.hdr.size != sizeof(T)) return fail(why, "header size does not match its type");
    return true;
}

} // namespace

std::optional<Record> decode_record(const void *data, std::size_t size, std::string *why) {
    if (!data || size < sizeof(rw_header)) {
        fail(why, "shorter than a record header");
        return std::nullopt;
    }
    rw_header hdr;
    std::memcpy(&hdr, data, sizeof(hdr));
    // bpf_ktime_get_ns(): nanoseconds of uptime, nowhere near 2^62 (146 years).
    if (hdr.ts_ns >= (std::uint64_t(1) << 62)) {
        fail(why, "timestamp beyond any uptime");
        return std::nullopt;
    }
    switch (hdr.type) {
    case RW_REC_RESET: {
        rw_reset r;
        if (!load(data, size, r, why) || !valid_endpoints(r.ep, why)) return std::nullopt;
        if (r.direction != RW_DIR_SENT && r.direction != RW_DIR_RECEIVED) {
            fail(why, "unknown reset direction");
            return std::nullopt;
        }
        terminate(r.owner);
        return r;
    }
    case RW_REC_SOCKOPT: {
        rw_sockopt r;
        if (!load(data, size, r, why) || !valid_endpoints(r.ep, why)) return std::nullopt;
        terminate(r.owner);
        return r;
    }
    case RW_REC_CLOSE: {
        rw_close r;
        if (!load(data, size, r, why) || !valid_endpoints(r.ep, why)) return std::nullopt;
        if (r.cause > RW_CAUSE_USER_TIMEOUT) {
            fail(why, "unknown timeout cause");
            return std::nullopt;
        }
        terminate(r.owner);
        return r;
    }
    case RW_REC_ENFORCE: {
        rw_enforce r;
        if (!load(data, size, r, why) || !valid_endpoints(r.ep, why)) return std::nullopt;
        terminate(r.owner);
        return r;
    }
    case RW_REC_SNAPSHOT: {
        rw_snapshot r;
        if (!load(data, size, r, why) || !valid_endpoints(r.ep, why)) return std::nullopt;
        terminate(r.owner);
        return r;
    }
    default:
        fail(why, "unknown record type");
        return std::nullopt;
    }
}

std::size_t decode_stream(const void *data, std::size_t size,
                          const std::function<void(const Record &)> &on_record, std::string *why) {
    const auto *p = static_cast<const std::uint8_t *>(data);
    std::size_t off = 0;
    while (size - off >= sizeof(rw_header)) {
        rw_header hdr;
        std::memcpy(&hdr, p + off, sizeof(hdr));
        // Check the header before waiting for more bytes: garbage must not
        // look like a partial record.
        if (size_of_type(hdr.type) == 0 || hdr.size != size_of_type(hdr.type)) {
            fail(why, "record header with unknown type or impossible size");
            return off;
        }
        if (hdr.size > size - off) break; // partial: wait for more bytes
        auto rec = decode_record(p + off, hdr.size, why);
        if (!rec) return off;
        on_record(*rec);
        off += hdr.size;
    }
    return off;
}

} // namespace rstwatch
