// rstwatch report, stage 2 internals: the typed, throw-free readers LineParser
// walks each object with (simdjson On Demand). Included by parse.cpp only:
// the simdjson types stay out of every other file. Header-only so that the
// per-field calls inline into the parse loop.
#pragma once

#include <optional>
#include <simdjson.h>
#include <string_view>

#include "report/parse.hpp"

namespace rstwatch::parse_detail {

namespace od = simdjson::ondemand;
using simdjson::error_code;

inline LineProblem problem_of(error_code e) {
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
inline bool at_end(od::document &doc) {
    return doc.current_location().error() == simdjson::OUT_OF_BOUNDS;
}

// A valid non-object document (array or scalar) is not_object; anything that
// fails while being read is not_json.
inline LineProblem non_object_problem(od::document &doc, od::json_type t) {
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

} // namespace rstwatch::parse_detail
