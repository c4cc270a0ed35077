// keepalive_enforced and the enforce_* lifecycle events. Field names and
// meanings are the contract in docs/events.md and schema/<event>.schema.json.
#include "enforce/format.hpp"

#include <cstring>

#include "util/clock.hpp"
#include "event/events.hpp"
#include "output/format.hpp"
#include "output/json_fields.hpp"
#include "util/json_writer.hpp"
#include "util/net.hpp"

namespace rstwatch {

std::string_view to_string(EnforceMode m) {
    return m == EnforceMode::always ? "always" : "unset-only";
}

std::string_view enforce_trigger_name(std::uint8_t trigger) {
    switch (trigger) {
    case RW_ENF_ACTIVE:
        return "active_open";
    case RW_ENF_PASSIVE:
        return "passive_open";
    case RW_ENF_EXISTING:
        return "existing";
    case RW_ENF_CLAMP:
        return "setsockopt";
    }
    return "unknown";
}

EnforceSettings EnforceSettings::from_config(const rw_enforce_config &c) {
    EnforceSettings s;
    s.cgroup_id = c.cgroup_id;
    s.mode = c.mode == RW_ENF_MODE_ALWAYS ? EnforceMode::always : EnforceMode::unset_only;
    s.idle_s = c.idle_s;
    if (c.interval_s) s.interval_s = c.interval_s;
    if (c.probes) s.probes = c.probes;
    s.dry_run = c.dry_run;
    return s;
}

namespace {

using json_fields::Envelope;

bool connected(const rw_endpoints &ep) {
    return ep.remote_port != 0;
}

class JsonEnforceFormatter final : public EnforceFormatter {
  public:
    explicit JsonEnforceFormatter(std::string host)
        : envelope_(host), trace_fmt_(make_json_formatter(std::move(host))) {}

    void start(std::string &out, const EnforceStart &e) override {
        JsonWriter w = begin(out, "enforce_start", e.ts_ns);
        w.field("version", e.version).field("kernel", e.kernel).field_unum("pid", e.pid);
        settings(w, e.settings);
        strings(w, "programs", e.programs);
        w.field_unum("owners_seeded", e.owners_seeded);
        if (e.existing) {
            w.key("existing").begin_object();
            w.field_unum("connections", e.existing->connections);
            w.field_unum("namespaces", e.existing->namespaces);
            w.field_unum("namespaces_skipped", e.existing->namespaces_skipped);
            w.end_object();
        } else {
            w.field_null("existing");
        }
        opt_str(w, "pinned", e.pinned);
        w.field_unum("startup_ms", e.startup_ms);
        end(w, out);
    }

    void enforced(std::string &out, const EnforcedEvent &e) override {
        const rw_enforce &r = e.rec;
        JsonWriter w = begin(out, "keepalive_enforced", e.ts_ns);
        w.field("trigger", enforce_trigger_name(r.trigger));
        json_fields::owner(w, r.owner, e.cgroup);
        if (connected(r.ep)) {
            json_fields::local_remote(w, r.ep);
        } else {
            w.field_null("family").field_null("local").field_null("remote");
        }
        if (r.netns)
            w.field_unum("netns", r.netns);
        else
            w.field_null("netns");
        keepalive(w, "previous", r.previous);
        keepalive(w, "applied", r.applied);
        w.field_bool("dry_run", r.dry_run);
        if (r.error)
            w.field_num("error", r.error < 0 ? -std::int64_t(r.error) : r.error);
        else
            w.field_null("error");
        end(w, out);
    }

    void stop(std::string &out, const EnforceStop &e) override {
        JsonWriter w = begin(out, "enforce_stop", e.ts_ns);
        w.field_unum("duration_ms", e.duration_ms).field("end_reason", e.end_reason);
        counters(w, e.counters);
        w.field_unum("lost", e.counters[RW_ENF_CNT_LOST]);
        w.field_bool("detached", e.detached);
        opt_str(w, "pinned", e.pinned);
        end(w, out);
    }

    void status(std::string &out, const EnforceStatus &e) override {
        const ActiveEnforcement &a = e.active;
        JsonWriter w = begin(out, "enforce_status", e.ts_ns);
        if (e.settings) {
            settings(w, *e.settings);
        } else {
            w.field_unum("cgroup_id", a.cgroup_id).field_null("cgroup");
            for (const char *k : {"mode", "idle_s", "interval_s", "probes", "dry_run"})
                w.field_null(k);
        }
        strings(w, "programs", a.programs);
        w.key("link_ids").begin_array();
        for (auto id : a.link_ids)
            w.unum(id);
        w.end_array();
        opt_str(w, "pinned", a.pin_dir);
        if (a.config && a.config->installer_pid) {
            w.key("installer").begin_object();
            w.field_unum("pid", a.config->installer_pid).field_bool("running", e.installer_running);
            w.end_object();
        } else {
            w.field_null("installer");
        }
        if (a.config && a.config->started_ns) {
            std::string ts(1, '"');
            Rfc3339().append(ts, std::int64_t(a.config->started_ns));
            ts.push_back('"');
            w.key("since").raw(ts);
        } else {
            w.field_null("since");
        }
        if (a.counters) {
            counters(w, *a.counters);
            w.field_unum("lost", (*a.counters)[RW_ENF_CNT_LOST]);
        } else {
            for (const char *k : {"enforced", "kept", "errors", "lost"})
                w.field_null(k);
        }
        end(w, out);
    }

    void removed(std::string &out, const EnforceRemoved &e) override {
        JsonWriter w = begin(out, "enforce_removed", e.ts_ns);
        w.field("cgroup", e.cgroup).field_unum("cgroup_id", e.cgroup_id);
        w.field("pin_dir", e.result.pin_dir);
        strings(w, "removed", e.result.removed);
        end(w, out);
    }

    void lost(std::string &out, std::int64_t ts_ns, std::uint64_t lost,
              std::uint64_t total) override {
        // The same `lost` event as `rstwatch trace`, counted under its type.
        LostEvent ev{ts_ns, "ringbuf_full", lost, total, {}};
        ev.by_type[3] = lost;
        trace_fmt_->lost(out, ev);
    }

  private:
    JsonWriter begin(std::string &out, std::string_view event, std::int64_t ts_ns) {
        return envelope_.begin(out, event, ts_ns);
    }
    static void end(JsonWriter &w, std::string &out) { Envelope::end(w, out); }

    static void opt_str(JsonWriter &w, std::string_view k, const std::string &v) {
        if (v.empty())
            w.field_null(k);
        else
            w.field(k, v);
    }

    static void strings(JsonWriter &w, std::string_view k, const std::vector<std::string> &v) {
        w.key(k).begin_array();
        for (const auto &s : v)
            w.str(s);
        w.end_array();
    }

    static void settings(JsonWriter &w, const EnforceSettings &s) {
        opt_str(w, "cgroup", s.cgroup);
        w.field_unum("cgroup_id", s.cgroup_id);
        w.field("mode", to_string(s.mode)).field_unum("idle_s", s.idle_s);
        if (s.interval_s)
            w.field_unum("interval_s", *s.interval_s);
        else
            w.field_null("interval_s");
        if (s.probes)
            w.field_unum("probes", *s.probes);
        else
            w.field_null("probes");
        w.field_bool("dry_run", s.dry_run);
    }

    static void keepalive(JsonWriter &w, std::string_view k, const rw_keepalive &ka) {
        w.key(k).begin_object();
        w.field_bool("enabled", ka.enabled).field_unum("idle_s", ka.idle_s);
        w.field_unum("interval_s", ka.interval_s).field_unum("probes", ka.probes);
        w.end_object();
    }

    static void counters(JsonWriter &w, const EnforceCounters &c) {
        w.key("enforced").begin_object();
        w.field_unum("active_open", c[RW_ENF_CNT_ACTIVE]);
        w.field_unum("passive_open", c[RW_ENF_CNT_PASSIVE]);
        w.field_unum("existing", c[RW_ENF_CNT_EXISTING]);
        w.field_unum("setsockopt", c[RW_ENF_CNT_CLAMP]);
        w.end_object();
        w.field_unum("kept", c[RW_ENF_CNT_KEPT]).field_unum("errors", c[RW_ENF_CNT_ERRORS]);
    }

    Envelope envelope_;
    std::unique_ptr<Formatter> trace_fmt_;
};

// One readable line per event, for a terminal.
class TextEnforceFormatter final : public EnforceFormatter {
  public:
    void start(std::string &out, const EnforceStart &e) override {
        line(out, e.ts_ns);
        out += std::string(e.settings.dry_run ? "dry run: would enforce" : "enforcing") +
               " keepalive on cgroup " + cgroup_name(e.settings) + ": " + plan(e.settings);
        if (e.existing)
            out += "; " + std::to_string(e.existing->connections) +
                   (e.settings.dry_run ? " existing connection(s) would change"
                                       : " existing connection(s) changed");
        if (!e.pinned.empty()) out += "; pinned at " + e.pinned;
        out += '\n';
    }

    void enforced(std::string &out, const EnforcedEvent &e) override {
        const rw_enforce &r = e.rec;
        line(out, e.ts_ns);
        out += r.dry_run ? "would set " : "set ";
        out += keepalive(r.applied);
        out += " (was " + keepalive(r.previous) + ") on ";
        if (r.owner.pid)
            out += std::string(r.owner.comm, strnlen(r.owner.comm, sizeof(r.owner.comm))) + "[" +
                   std::to_string(r.owner.pid) + "] ";
        else
            out += "unknown process ";
        if (connected(r.ep))
            out += format_addr(r.ep.local_addr, r.ep.family) + ":" +
                   std::to_string(r.ep.local_port) + " -> " +
                   format_addr(r.ep.remote_addr, r.ep.family) + ":" +
                   std::to_string(r.ep.remote_port) + " ";
        out += "(" + std::string(enforce_trigger_name(r.trigger)) + ")";
        if (r.error)
            out += " FAILED: " + std::string(std::strerror(r.error < 0 ? -r.error : r.error));
        out += '\n';
    }

    void stop(std::string &out, const EnforceStop &e) override {
        line(out, e.ts_ns);
        out += "stopped (" + std::string(e.end_reason) + ") after " +
               std::to_string(e.duration_ms) + " ms: " + std::to_string(e.counters.changed()) +
               " connection(s) changed, " + std::to_string(e.counters[RW_ENF_CNT_KEPT]) +
               " kept their own keepalive, " + std::to_string(e.counters[RW_ENF_CNT_ERRORS]) +
               " error(s)";
        out += e.detached ? "; detached" : "; still enforced, pinned at " + e.pinned;
        out += '\n';
    }

    void status(std::string &out, const EnforceStatus &e) override {
        const ActiveEnforcement &a = e.active;
        if (e.settings)
            out += "cgroup " + cgroup_name(*e.settings) + ": " + plan(*e.settings);
        else
            out += "cgroup id " + std::to_string(a.cgroup_id) +
                   ": installed by an incompatible rstwatch version";
        out += a.pin_dir.empty() ? "; held by rstwatch" : "; pinned at " + a.pin_dir;
        if (a.config && a.config->installer_pid)
            out += " (installer pid " + std::to_string(a.config->installer_pid) +
                   (e.installer_running ? ", running)" : ", exited)");
        if (a.counters)
            out += "; " + std::to_string(a.counters->changed()) + " connection(s) changed, " +
                   std::to_string((*a.counters)[RW_ENF_CNT_ERRORS]) + " error(s)";
        out += '\n';
    }

    void removed(std::string &out, const EnforceRemoved &e) override {
        if (e.result.removed.empty())
            out += "no pinned enforcement on cgroup " + e.cgroup + " (" + e.result.pin_dir + ")\n";
        else
            out += "removed the pinned enforcement of cgroup " + e.cgroup + " (" +
                   std::to_string(e.result.removed.size()) + " link(s) detached)\n";
    }

    void lost(std::string &out, std::int64_t ts_ns, std::uint64_t lost,
              std::uint64_t total) override {
        line(out, ts_ns);
        out += "lost " + std::to_string(lost) + " record(s) (ring buffer full; " +
               std::to_string(total) + " in total)\n";
    }

  private:
    void line(std::string &out, std::int64_t ts_ns) {
        ts_.append(out, ts_ns);
        out += ' ';
    }

    static std::string cgroup_name(const EnforceSettings &s) {
        return s.cgroup.empty() ? "id " + std::to_string(s.cgroup_id) + " (removed)" : s.cgroup;
    }

    static std::string plan(const EnforceSettings &s) {
        std::string p = "idle " + std::to_string(s.idle_s) + "s";
        p += s.interval_s ? ", interval " + std::to_string(*s.interval_s) + "s" : "";
        p += s.probes ? ", " + std::to_string(*s.probes) + " probes" : "";
        p += ", mode " + std::string(to_string(s.mode));
        if (s.dry_run) p += ", dry run";
        return p;
    }

    static std::string keepalive(const rw_keepalive &ka) {
        if (!ka.enabled) return "keepalive off (idle " + std::to_string(ka.idle_s) + "s)";
        return "keepalive on, idle " + std::to_string(ka.idle_s) + "s, interval " +
               std::to_string(ka.interval_s) + "s, " + std::to_string(ka.probes) + " probes";
    }

    Rfc3339 ts_;
};

} // namespace

std::unique_ptr<EnforceFormatter> make_enforce_formatter(Format format, std::string host) {
    if (format == Format::text) return std::make_unique<TextEnforceFormatter>();
    return std::make_unique<JsonEnforceFormatter>(std::move(host));
}

} // namespace rstwatch
