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
#include "report/parse_walk.hpp"

namespace rstwatch {

static_assert(simdjson::SIMDJSON_PADDING <= kReportPadding,
              "the line reader must leave simdjson's padding readable");

namespace {

using namespace parse_detail;

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

// Called for every key of every line: a switch on the length, then on the
// first letter, so that at most two fixed-size compares run. The same names
// as a table scanned per key cost 4x as much (about 240 ns instead of 60 for
// the 25 keys of a tcp_reset line, g++ -O2), in the report's hottest loop.
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

// What the fields of one line have told so far.
struct LineState {
    std::uint32_t seen = 0; // bit(Key) of every field read
    std::int64_t version = 0;
    bool unknown = false; // an unknown "event", unless "v" turns out newer
};

// v, event, ts, host: the fields every line has. Some problems end the line
// whatever else it holds (a newer version, an unknown event).
std::optional<LineProblem> read_header(Walk &w, Key key, od::value v, ReportLine &out,
                                       LineState &st) {
    bool ok = true;
    switch (key) {
    case K_V:
        ok = w.i64(v, st.version);
        if (ok && st.version > kSchemaVersion) return LineProblem::newer_version;
        if (ok && st.version < 1) ok = w.fail(LineProblem::bad_value);
        break;
    case K_EVENT: {
        ok = w.str(v, out.event);
        if (!ok) break;
        auto kind = event_kind(out.event);
        if (kind)
            out.kind = *kind;
        else if (st.seen & bit(K_V))
            return LineProblem::unknown_event;
        else
            st.unknown = true;
        break;
    }
    case K_TS: {
        std::string_view s;
        ok = w.str(v, s);
        if (!ok) break;
        auto ts = parse_rfc3339_ns(s);
        if (!ts)
            ok = w.fail(LineProblem::bad_value);
        else
            out.ts_ns = *ts;
        break;
    }
    case K_HOST:
        ok = w.str(v, out.host);
        if (ok && out.host.empty()) ok = w.fail(LineProblem::bad_value);
        break;
    default:
        break;
    }
    return ok ? std::nullopt : w.problem;
}

// The socket and its owner.
bool read_socket(Walk &w, Key key, od::value v, ReportLine &out) {
    switch (key) {
    case K_PROCESS:
        return w.process(v, out);
    case K_LOCAL:
        return w.endpoint(v, out.has_local, out.local);
    case K_REMOTE:
        return w.endpoint(v, out.has_remote, out.remote);
    case K_NETNS: {
        bool has = false;
        std::uint64_t n = 0;
        if (!w.opt_u64(v, has, n)) return false;
        if (n > 0xffffffffu) return w.fail(LineProblem::bad_value);
        out.netns = std::uint32_t(n);
        return true;
    }
    case K_KEEPALIVE:
        return w.keepalive(v, out);
    case K_IDLE_MS:
        return w.opt_u64(v, out.has_idle, out.idle_ms);
    case K_CGROUP:
        return w.opt_str(v, out.cgroup);
    case K_CONTAINER_ID:
        return w.opt_str(v, out.container_id);
    default:
        return true;
    }
}

// verdict, origin, direction: closed sets of names.
bool read_enum(Walk &w, Key key, od::value v, ReportLine &out) {
    std::string_view s;
    if (!w.str(v, s)) return false;
    switch (key) {
    case K_VERDICT: {
        auto verdict = parse_verdict(s);
        if (!verdict) return w.fail(LineProblem::bad_value);
        out.verdict = *verdict;
        return true;
    }
    case K_ORIGIN:
        if (s == "middlebox")
            out.origin = Origin::middlebox;
        else if (s == "peer")
            out.origin = Origin::peer;
        else if (s == "local")
            out.origin = Origin::local;
        else if (s == "unknown")
            out.origin = Origin::unknown;
        else
            return w.fail(LineProblem::bad_value);
        return true;
    case K_DIRECTION:
        if (s == "sent")
            out.sent = true;
        else if (s != "received")
            return w.fail(LineProblem::bad_value);
        return true;
    case K_OPTION:
        out.option = option_of(s);
        return true;
    default:
        return true;
    }
}

// Counters of summaries and audits, and keepalive_set's value and result.
bool read_count(Walk &w, Key key, od::value v, ReportLine &out) {
    switch (key) {
    case K_CONNECTIONS:
        return w.u64(v, out.connections);
    case K_WITHOUT_KA:
        return w.u64(v, out.without_keepalive);
    case K_RESETS_RX:
        return w.u64(v, out.resets_received);
    case K_RESETS_TX:
        return w.u64(v, out.resets_sent);
    case K_TIMEOUTS:
        return w.u64(v, out.timeouts);
    case K_SOCKETS:
        return w.u64(v, out.sockets);
    case K_LOST:
        return w.u64(v, out.lost);
    case K_VALUE:
        return w.i64(v, out.value);
    case K_RESULT:
        return w.i64(v, out.result);
    default:
        return true;
    }
}

std::optional<LineProblem> read_field(Walk &w, Key key, od::value v, ReportLine &out,
                                      LineState &st) {
    bool ok = true;
    switch (key) {
    case K_V:
    case K_EVENT:
    case K_TS:
    case K_HOST:
        return read_header(w, key, v, out, st);
    case K_VERDICT:
    case K_ORIGIN:
    case K_DIRECTION:
    case K_OPTION:
        ok = read_enum(w, key, v, out);
        break;
    case K_CONNECTIONS:
    case K_WITHOUT_KA:
    case K_RESETS_RX:
    case K_RESETS_TX:
    case K_TIMEOUTS:
    case K_SOCKETS:
    case K_LOST:
    case K_VALUE:
    case K_RESULT:
        ok = read_count(w, key, v, out);
        break;
    default:
        ok = read_socket(w, key, v, out);
        break;
    }
    return ok ? std::nullopt : w.problem;
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
    LineState st;
    for (auto fr : obj) {
        od::field f;
        if (!w.check(std::move(fr).get(f))) return w.problem;
        std::string_view k;
        if (!w.key(f, k)) return w.problem;
        Key key = classify_key(k);
        if (key == K_OTHER) continue;
        // A report's own lines reuse some names with other shapes
        // ("timeouts" is an object there): only the common fields matter.
        if (out.kind == ReportEventKind::report_output && (st.seen & bit(K_EVENT)) && key != K_V &&
            key != K_TS && key != K_HOST)
            continue;
        st.seen |= bit(key);
        if (auto p = read_field(w, key, f.value(), out, st)) return p;
    }
    // Trailing bytes after the object ("{...} x", "{...}}").
    if (!at_end(doc)) return LineProblem::not_json;

    constexpr std::uint32_t base = bit(K_V) | bit(K_EVENT) | bit(K_TS) | bit(K_HOST);
    if ((st.seen & base) != base) return LineProblem::missing_field;
    if (st.unknown) return LineProblem::unknown_event;
    if ((st.seen & required_fields(out.kind)) != required_fields(out.kind))
        return LineProblem::missing_field;
    if (process_required_non_null(out.kind) && !out.has_process) return LineProblem::wrong_type;
    return std::nullopt;
}

} // namespace rstwatch
