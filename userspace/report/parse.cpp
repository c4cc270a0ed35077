// One pass over each object with simdjson On Demand: keys are classified from
// their raw bytes (no copy), only the fields the report uses are decoded, and
// everything else is skipped by the structural index simdjson built for the
// line. Each line is parsed on its own so that a damaged line costs only
// itself.
#include "report/parse.hpp"

#include <arpa/inet.h>
#include <cstring>
#include <simdjson.h>

#include "event/events.hpp"
#include "report/input.hpp"

namespace rstwatch {

static_assert(simdjson::SIMDJSON_PADDING <= kReportPadding,
              "the line reader must leave simdjson's padding readable");

std::string_view to_string(LineProblem p) {
    static constexpr std::string_view names[kLineProblemCount] = {
        "not_json",      "not_object",    "missing_field", "wrong_type",     "bad_value",
        "unknown_event", "newer_version", "too_long",      "truncated_gzip", "corrupt_gzip"};
    return names[std::size_t(p)];
}

namespace {

namespace od = simdjson::ondemand;
using simdjson::error_code;

enum Key : std::uint8_t {
    K_OTHER,
    K_V,
    K_EVENT,
    K_TS,
    K_HOST,
    K_PROCESS,
    K_LOCAL,
    K_REMOTE,
    K_NETNS,
    K_KEEPALIVE,
    K_IDLE_MS,
    K_VERDICT,
    K_ORIGIN,
    K_DIRECTION,
    K_CONNECTIONS,
    K_WITHOUT_KA,
    K_RESETS_RX,
    K_RESETS_TX,
    K_TIMEOUTS,
    K_SOCKETS,
    K_LOST,
    K_OPTION,
    K_VALUE,
    K_RESULT,
    K_CGROUP,
    K_CONTAINER_ID,
    K_COUNT
};

constexpr std::uint32_t bit(Key k) {
    return 1u << k;
}

// Fields each event type must carry (beyond v, event, ts, host). Nullable
// fields count as present when they are null.
std::uint32_t required_fields(ReportEventKind k) {
    switch (k) {
    case ReportEventKind::tcp_reset:
        return bit(K_DIRECTION) | bit(K_LOCAL) | bit(K_REMOTE) | bit(K_PROCESS) | bit(K_KEEPALIVE) |
               bit(K_IDLE_MS) | bit(K_VERDICT) | bit(K_ORIGIN);
    case ReportEventKind::tcp_timeout:
        return bit(K_LOCAL) | bit(K_REMOTE) | bit(K_PROCESS) | bit(K_KEEPALIVE) | bit(K_IDLE_MS) |
               bit(K_VERDICT);
    case ReportEventKind::connection_closed:
    case ReportEventKind::audit_socket:
        return bit(K_LOCAL) | bit(K_REMOTE) | bit(K_PROCESS) | bit(K_KEEPALIVE);
    case ReportEventKind::keepalive_set:
        return bit(K_PROCESS) | bit(K_OPTION) | bit(K_VALUE) | bit(K_RESULT);
    case ReportEventKind::process_summary:
        return bit(K_PROCESS) | bit(K_CONNECTIONS) | bit(K_WITHOUT_KA);
    case ReportEventKind::audit_process:
        return bit(K_PROCESS) | bit(K_SOCKETS) | bit(K_WITHOUT_KA);
    case ReportEventKind::lost:
        return bit(K_LOST);
    default:
        return 0;
    }
}

// Events whose "process" must be an object (the others allow null: a reset
// for a socket nobody owns).
bool process_required_non_null(ReportEventKind k) {
    return k == ReportEventKind::process_summary || k == ReportEventKind::audit_process;
}

Key classify_key(std::string_view k) {
    auto is = [&k](std::string_view s) { return std::memcmp(k.data(), s.data(), s.size()) == 0; };
    switch (k.size()) {
    case 1:
        return k[0] == 'v' ? K_V : K_OTHER;
    case 2:
        return is("ts") ? K_TS : K_OTHER;
    case 4:
        return is("host") ? K_HOST : is("lost") ? K_LOST : K_OTHER;
    case 5:
        switch (k[0]) {
        case 'e':
            return is("event") ? K_EVENT : K_OTHER;
        case 'l':
            return is("local") ? K_LOCAL : K_OTHER;
        case 'n':
            return is("netns") ? K_NETNS : K_OTHER;
        case 'v':
            return is("value") ? K_VALUE : K_OTHER;
        }
        return K_OTHER;
    case 6:
        switch (k[0]) {
        case 'r':
            return is("remote") ? K_REMOTE : is("result") ? K_RESULT : K_OTHER;
        case 'o':
            return is("origin") ? K_ORIGIN : is("option") ? K_OPTION : K_OTHER;
        case 'c':
            return is("cgroup") ? K_CGROUP : K_OTHER;
        }
        return K_OTHER;
    case 7:
        switch (k[0]) {
        case 'p':
            return is("process") ? K_PROCESS : K_OTHER;
        case 'i':
            return is("idle_ms") ? K_IDLE_MS : K_OTHER;
        case 'v':
            return is("verdict") ? K_VERDICT : K_OTHER;
        case 's':
            return is("sockets") ? K_SOCKETS : K_OTHER;
        }
        return K_OTHER;
    case 8:
        return is("timeouts") ? K_TIMEOUTS : K_OTHER;
    case 9:
        return is("keepalive") ? K_KEEPALIVE : is("direction") ? K_DIRECTION : K_OTHER;
    case 11:
        return is("connections") ? K_CONNECTIONS : is("resets_sent") ? K_RESETS_TX : K_OTHER;
    case 12:
        return is("container_id") ? K_CONTAINER_ID : K_OTHER;
    case 15:
        return is("resets_received") ? K_RESETS_RX : K_OTHER;
    case 17:
        return is("without_keepalive") ? K_WITHOUT_KA : K_OTHER;
    }
    return K_OTHER;
}

std::optional<ReportEventKind> event_kind(std::string_view e) {
    struct Name {
        std::string_view name;
        ReportEventKind kind;
    };
    static constexpr Name names[] = {
        {"tcp_reset", ReportEventKind::tcp_reset},
        {"tcp_timeout", ReportEventKind::tcp_timeout},
        {"connection_closed", ReportEventKind::connection_closed},
        {"keepalive_set", ReportEventKind::keepalive_set},
        {"process_summary", ReportEventKind::process_summary},
        {"audit_socket", ReportEventKind::audit_socket},
        {"audit_process", ReportEventKind::audit_process},
        {"lost", ReportEventKind::lost},
        {"session_start", ReportEventKind::session_start},
        {"session_summary", ReportEventKind::session_summary},
    };
    for (const auto &n : names)
        if (n.name == e) return n.kind;
    if (e.size() > 7 && e.substr(0, 7) == "report_") return ReportEventKind::report_output;
    return std::nullopt;
}

KaOption option_of(std::string_view s) {
    if (s == "SO_KEEPALIVE") return KaOption::so_keepalive;
    if (s == "TCP_KEEPIDLE") return KaOption::tcp_keepidle;
    if (s == "TCP_KEEPINTVL") return KaOption::tcp_keepintvl;
    if (s == "TCP_KEEPCNT") return KaOption::tcp_keepcnt;
    if (s == "TCP_USER_TIMEOUT") return KaOption::tcp_user_timeout;
    return KaOption::other;
}

LineProblem problem_of(error_code e) {
    switch (e) {
    case simdjson::INCORRECT_TYPE:
    case simdjson::NUMBER_OUT_OF_RANGE:
    case simdjson::NUMBER_ERROR:
        return LineProblem::wrong_type;
    default:
        return LineProblem::not_json;
    }
}

// Thrown-free error plumbing: the first problem wins and ends the line.
struct Walk {
    std::optional<LineProblem> problem;

    bool fail(LineProblem p) {
        if (!problem) problem = p;
        return false;
    }
    bool check(error_code e) { return e ? fail(problem_of(e)) : true; }

    // The key of a field without copying it (escaped keys are rare: unescape).
    bool key(od::field &f, std::string_view &out) {
        const char *raw = f.key().raw();
        const char *p = raw;
        while (*p != '"' && *p != '\\')
            ++p;
        if (*p == '"') {
            out = std::string_view(raw, std::size_t(p - raw));
            return true;
        }
        return check(f.unescaped_key().get(out));
    }

    bool u64(od::value v, std::uint64_t &out) { return check(v.get_uint64().get(out)); }
    bool u32(od::value v, std::uint32_t &out) {
        std::uint64_t n = 0;
        if (!u64(v, n)) return false;
        if (n > 0xffffffffu) return fail(LineProblem::bad_value);
        out = std::uint32_t(n);
        return true;
    }
    bool i64(od::value v, std::int64_t &out) { return check(v.get_int64().get(out)); }
    bool str(od::value v, std::string_view &out) { return check(v.get_string().get(out)); }

    // Null leaves `is_null` true and consumes the value.
    bool null_or(od::value &v, bool &is_null) {
        od::json_type t;
        if (!check(v.type().get(t))) return false;
        is_null = t == od::json_type::null;
        if (is_null) {
            bool n = false;
            if (!check(v.is_null().get(n))) return false;
            if (!n) return fail(LineProblem::not_json);
        }
        return true;
    }

    bool opt_u64(od::value v, bool &has, std::uint64_t &out) {
        bool is_null = false;
        if (!null_or(v, is_null)) return false;
        has = !is_null;
        return is_null || u64(v, out);
    }
    bool opt_str(od::value v, std::string_view &out) {
        bool is_null = false;
        if (!null_or(v, is_null)) return false;
        if (is_null) {
            out = {};
            return true;
        }
        return str(v, out);
    }

    bool object(od::value &v, od::object &out) { return check(v.get_object().get(out)); }

    bool endpoint(od::value v, bool &has, ReportEndpoint &ep) {
        bool is_null = false;
        if (!null_or(v, is_null)) return false;
        has = false;
        if (is_null) return true;
        od::object obj;
        if (!object(v, obj)) return false;
        bool addr = false, port = false;
        for (auto fr : obj) {
            od::field f;
            if (!check(std::move(fr).get(f))) return false;
            std::string_view k;
            if (!key(f, k)) return false;
            if (k == "addr") {
                std::string_view s;
                if (!str(f.value(), s)) return false;
                if (!parse_report_addr(s, ep.addr)) return fail(LineProblem::bad_value);
                addr = true;
            } else if (k == "port") {
                std::uint64_t n = 0;
                if (!u64(f.value(), n)) return false;
                if (n > 65535) return fail(LineProblem::bad_value);
                ep.port = std::uint16_t(n);
                port = true;
            }
        }
        if (!addr || !port) return fail(LineProblem::missing_field);
        has = true;
        return true;
    }

    bool process(od::value v, ReportLine &out) {
        bool is_null = false;
        if (!null_or(v, is_null)) return false;
        out.has_process = false;
        if (is_null) return true;
        od::object obj;
        if (!object(v, obj)) return false;
        bool pid = false, comm = false;
        for (auto fr : obj) {
            od::field f;
            if (!check(std::move(fr).get(f))) return false;
            std::string_view k;
            if (!key(f, k)) return false;
            if (k == "pid") {
                if (!u32(f.value(), out.pid)) return false;
                pid = true;
            } else if (k == "comm") {
                if (!str(f.value(), out.comm)) return false;
                comm = true;
            } else if (k == "uid") {
                if (!u32(f.value(), out.uid)) return false;
            }
        }
        if (!pid || !comm) return fail(LineProblem::missing_field);
        out.has_process = true;
        return true;
    }

    bool keepalive(od::value v, ReportLine &out) {
        bool is_null = false;
        if (!null_or(v, is_null)) return false;
        out.ka = KaState::unknown;
        if (is_null) return true;
        od::object obj;
        if (!object(v, obj)) return false;
        bool enabled = false, seen = false;
        for (auto fr : obj) {
            od::field f;
            if (!check(std::move(fr).get(f))) return false;
            std::string_view k;
            if (!key(f, k)) return false;
            if (k == "enabled") {
                if (!check(f.value().get_bool().get(enabled))) return false;
                seen = true;
            } else if (k == "idle_s") {
                if (!u32(f.value(), out.ka_idle_s)) return false;
            } else if (k == "source") {
                std::string_view s;
                if (!str(f.value(), s)) return false;
                out.ka_idle_from_socket = s == "socket";
            }
        }
        if (!seen) return fail(LineProblem::missing_field);
        out.ka = enabled ? KaState::on : KaState::off;
        return true;
    }
};

// Nothing after the value ("{...} x" and "{...}}" are not JSON).
bool at_end(od::document &doc) {
    return doc.current_location().error() == simdjson::OUT_OF_BOUNDS;
}

// A valid non-object document (array or scalar) is not_object; anything that
// fails while being read is not_json.
LineProblem non_object_problem(od::document &doc, od::json_type t) {
    error_code e = simdjson::SUCCESS;
    switch (t) {
    case od::json_type::array: {
        od::array arr;
        e = doc.get_array().get(arr);
        if (!e)
            for (auto el : arr)
                if ((e = el.error())) break;
        break;
    }
    case od::json_type::string: {
        std::string_view s;
        e = doc.get_string().get(s);
        break;
    }
    case od::json_type::number: {
        double d;
        e = doc.get_double().get(d);
        break;
    }
    case od::json_type::boolean: {
        bool b;
        e = doc.get_bool().get(b);
        break;
    }
    case od::json_type::null: {
        bool n = false;
        e = doc.is_null().get(n);
        if (!e && !n) e = simdjson::N_ATOM_ERROR;
        break;
    }
    default:
        break;
    }
    if (e || !at_end(doc)) return LineProblem::not_json;
    return LineProblem::not_object;
}

} // namespace

struct LineParser::Impl {
    od::parser parser;
};

LineParser::LineParser() : impl_(std::make_unique<Impl>()) {}
LineParser::~LineParser() = default;

std::optional<LineProblem> LineParser::parse(const char *data, std::size_t len,
                                             std::size_t capacity, ReportLine &out) {
    out = ReportLine{};
    od::document doc;
    if (impl_->parser.iterate(data, len, capacity).get(doc)) return LineProblem::not_json;
    od::json_type t;
    if (doc.type().get(t)) return LineProblem::not_json;
    if (t != od::json_type::object) return non_object_problem(doc, t);
    od::object obj;
    if (doc.get_object().get(obj)) return LineProblem::not_json;

    Walk w;
    std::uint32_t seen = 0;
    std::int64_t version = 0;
    bool unknown = false;
    for (auto fr : obj) {
        od::field f;
        if (!w.check(std::move(fr).get(f))) return w.problem;
        std::string_view k;
        if (!w.key(f, k)) return w.problem;
        Key key = classify_key(k);
        if (key == K_OTHER) continue;
        // A report's own lines reuse some names with other shapes
        // ("timeouts" is an object there): only the common fields matter.
        if (out.kind == ReportEventKind::report_output && (seen & bit(K_EVENT)) && key != K_V &&
            key != K_TS && key != K_HOST)
            continue;
        seen |= bit(key);
        bool ok = true;
        switch (key) {
        case K_V:
            ok = w.i64(f.value(), version);
            if (ok && version > kSchemaVersion) return LineProblem::newer_version;
            if (ok && version < 1) ok = w.fail(LineProblem::bad_value);
            break;
        case K_EVENT: {
            ok = w.str(f.value(), out.event);
            if (!ok) break;
            auto kind = event_kind(out.event);
            if (kind)
                out.kind = *kind;
            else if (seen & bit(K_V))
                return LineProblem::unknown_event;
            else
                unknown = true; // unless "v" turns out newer
            break;
        }
        case K_TS: {
            std::string_view s;
            ok = w.str(f.value(), s);
            if (!ok) break;
            auto ts = parse_rfc3339_ns(s);
            if (!ts)
                ok = w.fail(LineProblem::bad_value);
            else
                out.ts_ns = *ts;
            break;
        }
        case K_HOST:
            ok = w.str(f.value(), out.host);
            if (ok && out.host.empty()) ok = w.fail(LineProblem::bad_value);
            break;
        case K_PROCESS:
            ok = w.process(f.value(), out);
            break;
        case K_LOCAL:
            ok = w.endpoint(f.value(), out.has_local, out.local);
            break;
        case K_REMOTE:
            ok = w.endpoint(f.value(), out.has_remote, out.remote);
            break;
        case K_NETNS: {
            bool has = false;
            std::uint64_t n = 0;
            ok = w.opt_u64(f.value(), has, n);
            if (ok && n > 0xffffffffu) ok = w.fail(LineProblem::bad_value);
            out.netns = std::uint32_t(n);
            break;
        }
        case K_KEEPALIVE:
            ok = w.keepalive(f.value(), out);
            break;
        case K_IDLE_MS:
            ok = w.opt_u64(f.value(), out.has_idle, out.idle_ms);
            break;
        case K_VERDICT: {
            std::string_view s;
            ok = w.str(f.value(), s);
            if (!ok) break;
            auto v = parse_verdict(s);
            if (!v)
                ok = w.fail(LineProblem::bad_value);
            else
                out.verdict = *v;
            break;
        }
        case K_ORIGIN: {
            std::string_view s;
            ok = w.str(f.value(), s);
            if (!ok) break;
            if (s == "middlebox")
                out.origin = Origin::middlebox;
            else if (s == "peer")
                out.origin = Origin::peer;
            else if (s == "local")
                out.origin = Origin::local;
            else if (s == "unknown")
                out.origin = Origin::unknown;
            else
                ok = w.fail(LineProblem::bad_value);
            break;
        }
        case K_DIRECTION: {
            std::string_view s;
            ok = w.str(f.value(), s);
            if (!ok) break;
            if (s == "sent")
                out.sent = true;
            else if (s != "received")
                ok = w.fail(LineProblem::bad_value);
            break;
        }
        case K_CONNECTIONS:
            ok = w.u64(f.value(), out.connections);
            break;
        case K_WITHOUT_KA:
            ok = w.u64(f.value(), out.without_keepalive);
            break;
        case K_RESETS_RX:
            ok = w.u64(f.value(), out.resets_received);
            break;
        case K_RESETS_TX:
            ok = w.u64(f.value(), out.resets_sent);
            break;
        case K_TIMEOUTS:
            ok = w.u64(f.value(), out.timeouts);
            break;
        case K_SOCKETS:
            ok = w.u64(f.value(), out.sockets);
            break;
        case K_LOST:
            ok = w.u64(f.value(), out.lost);
            break;
        case K_OPTION: {
            std::string_view s;
            ok = w.str(f.value(), s);
            out.option = option_of(s);
            break;
        }
        case K_VALUE:
            ok = w.i64(f.value(), out.value);
            break;
        case K_RESULT:
            ok = w.i64(f.value(), out.result);
            break;
        case K_CGROUP:
            ok = w.opt_str(f.value(), out.cgroup);
            break;
        case K_CONTAINER_ID:
            ok = w.opt_str(f.value(), out.container_id);
            break;
        default:
            break;
        }
        if (!ok) return w.problem;
    }
    // Trailing bytes after the object ("{...} x", "{...}}").
    if (!at_end(doc)) return LineProblem::not_json;

    constexpr std::uint32_t base = bit(K_V) | bit(K_EVENT) | bit(K_TS) | bit(K_HOST);
    if ((seen & base) != base) return LineProblem::missing_field;
    if (unknown) return LineProblem::unknown_event;
    if ((seen & required_fields(out.kind)) != required_fields(out.kind))
        return LineProblem::missing_field;
    if (process_required_non_null(out.kind) && !out.has_process) return LineProblem::wrong_type;
    return std::nullopt;
}

namespace {

// Howard Hinnant's days_from_civil.
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = unsigned(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + std::int64_t(doe) - 719468;
}

bool digits(std::string_view s, std::size_t pos, std::size_t n, unsigned &out) {
    if (pos + n > s.size()) return false;
    out = 0;
    for (std::size_t i = pos; i < pos + n; ++i) {
        unsigned c = unsigned(s[i]) - '0';
        if (c > 9) return false;
        out = out * 10 + c;
    }
    return true;
}

} // namespace

std::optional<std::int64_t> parse_rfc3339_ns(std::string_view s) {
    unsigned y, mo, d, h, mi, sec;
    if (s.size() < 20 || !digits(s, 0, 4, y) || s[4] != '-' || !digits(s, 5, 2, mo) ||
        s[7] != '-' || !digits(s, 8, 2, d) || (s[10] != 'T' && s[10] != 't') ||
        !digits(s, 11, 2, h) || s[13] != ':' || !digits(s, 14, 2, mi) || s[16] != ':' ||
        !digits(s, 17, 2, sec))
        return std::nullopt;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return std::nullopt;
    std::size_t pos = 19;
    std::int64_t frac = 0;
    if (s[pos] == '.') {
        ++pos;
        std::size_t n = 0;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
            if (n < 9) frac = frac * 10 + (s[pos] - '0');
            ++n;
            ++pos;
        }
        if (n == 0) return std::nullopt;
        for (; n < 9; ++n)
            frac *= 10;
    }
    std::int64_t offset_s = 0;
    if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
        ++pos;
    } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
        unsigned oh, om;
        if (!digits(s, pos + 1, 2, oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
            !digits(s, pos + 4, 2, om) || oh > 23 || om > 59)
            return std::nullopt;
        offset_s = (std::int64_t(oh) * 3600 + om * 60) * (s[pos] == '+' ? 1 : -1);
        pos += 6;
    } else {
        return std::nullopt;
    }
    if (pos != s.size()) return std::nullopt;
    std::int64_t days = days_from_civil(y, mo, d);
    std::int64_t secs = days * 86400 + std::int64_t(h) * 3600 + mi * 60 + sec - offset_s;
    // Nanoseconds since the epoch in an int64 span 1677..2262: later (or
    // earlier) stamps cannot be represented, so they are not timestamps here.
    constexpr std::int64_t kMaxSecs = INT64_MAX / 1'000'000'000 - 1;
    if (secs > kMaxSecs || secs < -kMaxSecs) return std::nullopt;
    return secs * 1'000'000'000 + frac;
}

bool parse_report_addr(std::string_view s, std::array<std::uint8_t, 16> &out) {
    out = {};
    // Fast path: dotted quad.
    unsigned part = 0, parts = 0, ndig = 0;
    bool v4 = !s.empty() && s.size() <= 15;
    std::uint8_t q[4];
    for (std::size_t i = 0; v4 && i < s.size(); ++i) {
        char c = s[i];
        if (c >= '0' && c <= '9') {
            part = part * 10 + unsigned(c - '0');
            if (++ndig > 3 || part > 255) v4 = false;
        } else if (c == '.' && ndig > 0 && parts < 3) {
            q[parts++] = std::uint8_t(part);
            part = 0;
            ndig = 0;
        } else {
            v4 = false;
        }
    }
    if (v4 && parts == 3 && ndig > 0) {
        q[3] = std::uint8_t(part);
        out[10] = out[11] = 0xff;
        std::memcpy(out.data() + 12, q, 4);
        return true;
    }
    if (s.size() >= INET6_ADDRSTRLEN || s.find(':') == std::string_view::npos) return false;
    char buf[INET6_ADDRSTRLEN];
    std::memcpy(buf, s.data(), s.size());
    buf[s.size()] = '\0';
    return inet_pton(AF_INET6, buf, out.data()) == 1;
}

} // namespace rstwatch
