#include "targets.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "cli/cli.hpp"
#include "event/decode.hpp"
#include "event/diagnose.hpp"
#include "util/error.hpp"
#include "output/format.hpp"
#include "util/middlebox.hpp"
#include "trace/pipeline.hpp"
#ifndef RW_NO_REPORT
#include "report/report.hpp"
#include "report/format.hpp"
#endif
#include "util/units.hpp"

namespace rwfuzz {

namespace {

using namespace rstwatch;

// An invariant broke: say which, then crash so the fuzzer keeps the input.
#define RW_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            std::fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);     \
            std::abort();                                                                          \
        }                                                                                          \
    } while (0)

std::string text_of(const std::uint8_t *data, std::size_t size) {
    return std::string(reinterpret_cast<const char *>(data), size);
}

std::uint16_t size_in_header(const Record &r) {
    return std::visit([](const auto &rec) { return rec.hdr.size; }, r);
}

bool comm_terminated(const Record &r) {
    return std::visit(
        [](const auto &rec) { return strnlen(rec.owner.comm, RW_COMM_LEN) < RW_COMM_LEN; }, r);
}

// Ring-buffer samples (decode_record) and iterator streams (decode_stream).
int decode(const std::uint8_t *data, std::size_t size) {
    std::string why;
    auto rec = decode_record(data, size, &why);
    if (rec) {
        RW_CHECK(size_in_header(*rec) == size);
        RW_CHECK(comm_terminated(*rec));
    } else {
        RW_CHECK(!why.empty());
    }
    std::string swhy;
    std::size_t sum = 0, count = 0;
    std::size_t used = decode_stream(
        data, size,
        [&](const Record &r) {
            RW_CHECK(comm_terminated(r));
            sum += size_in_header(r);
            ++count;
        },
        &swhy);
    RW_CHECK(used <= size);
    RW_CHECK(used == sum);
    // What is left unconsumed without an error is a partial record only.
    if (swhy.empty() && used < size && size - used >= sizeof(rw_header)) {
        rw_header h;
        std::memcpy(&h, data + used, sizeof(h));
        RW_CHECK(h.size > size - used);
    }
    return 0;
}

// A sink that keeps nothing but checks every line is one JSON object with the
// contract's common fields.
class CheckingSink final : public Sink {
  public:
    CheckingSink(bool json, bool color) : json_(json), color_(color) {}
    WriteResult write(std::string_view lines) override {
        RW_CHECK(!lines.empty() && lines.back() == '\n');
        // Text for a terminal: without colour, no control character but '\n'
        // (process names must not smuggle escape sequences in).
        if (!json_ && !color_)
            for (char ch : lines) {
                const auto c = static_cast<unsigned char>(ch);
                RW_CHECK(c == '\n' || (c >= 0x20 && c != 0x7f));
            }
        if (json_) {
            std::size_t start = 0;
            while (start < lines.size()) {
                std::size_t nl = lines.find('\n', start);
                auto j = nlohmann::json::parse(lines.substr(start, nl - start), nullptr, false);
                RW_CHECK(j.is_object());
                RW_CHECK(j.value("v", 0) == 1);
                RW_CHECK(j.contains("event") && j.contains("ts") && j.contains("host"));
                start = nl + 1;
            }
        }
        return {WriteStatus::ok, lines.size()};
    }

  private:
    bool json_, color_;
};

// The whole path after the ring buffer, as the trace loop drives it: the first
// byte picks the output format and the event kinds, the rest is one sample.
int pipeline(const std::uint8_t *data, std::size_t size) {
    if (size < 1) return 0;
    const std::uint8_t sel = data[0];
    const bool json = !(sel & 0x80);
    const bool color = sel & 0x40;
    auto fmt = json ? make_json_formatter("fuzzhost") : make_text_formatter(color);
    Output out(std::make_unique<CheckingSink>(json, color));
    CgroupResolver cgroups(""); // no cgroup2 walk per input
    KernelFacts kernel;
    kernel.release = "6.18.0-fuzz";
    kernel.rst_reason_names = {"NOT_SPECIFIED", "NO_SOCKET", "TCP_ABORT_ON_CLOSE"};
    WallClock clock;
    PipelineConfig pc{DiagnoseConfig::make(std::chrono::minutes(5), std::nullopt), std::nullopt,
                      std::uint32_t(sel & 0x0f), 0};
    TracePipeline pipe(pc, *fmt, out, cgroups, kernel, clock);
    pipe.on_sample(data + 1, size - 1);
    pipe.flush_pending(0, /*force=*/true);
    out.flush();
    return 0;
}

// Durations, sizes, middlebox presets, verdicts: never throw, and whatever
// parses renders back to the same value.
int units(const std::uint8_t *data, std::size_t size) {
    const std::string s = text_of(data, size);
    if (auto d = parse_duration(s)) {
        RW_CHECK(d->count() >= 0);
        auto again = parse_duration(format_duration(*d));
        RW_CHECK(again && *again == *d);
    }
    if (auto n = parse_size(s)) RW_CHECK(*n <= std::uint64_t(INT64_MAX));
    if (auto m = parse_middlebox_timeout(s)) RW_CHECK(m->count() > 0);
    (void)parse_verdict(s);
    return 0;
}

void expect_usage_error_only(const std::function<void()> &f) {
    try {
        f();
    } catch (const UsageError &e) {
        RW_CHECK(e.code() == Exit::usage);
        RW_CHECK(std::string_view(e.what()).find('\n') == std::string_view::npos);
    }
    // Anything else escaping (std::exception, CLI11's own errors) is a bug:
    // libFuzzer reports the uncaught exception as a crash.
}

int events(const std::uint8_t *data, std::size_t size) {
    const std::string s = text_of(data, size);
    expect_usage_error_only([&] {
        std::uint32_t mask = parse_events(s);
        RW_CHECK(mask != 0);
    });
    return 0;
}

// --cgroup paths: stat/statfs/realpath only, safe on any path.
int cgroup(const std::uint8_t *data, std::size_t size) {
    const std::string s = text_of(data, size);
    if (s.find('\0') != std::string::npos) return 0; // not expressible in argv
    expect_usage_error_only([&] {
        std::uint64_t id = 0;
        int level = -1;
        resolve_cgroup(s, id, level);
        RW_CHECK(level >= 0);
    });
    return 0;
}

// Whole command lines, one argument per line. Arguments with '/' are skipped:
// --output probes open files for writing, and a fuzzer running as root must
// not open /dev/watchdog. Relative names stay in the (scratch) working dir.
int cli(const std::uint8_t *data, std::size_t size) {
    const std::string s = text_of(data, size);
    if (s.find('/') != std::string::npos || s.find('\0') != std::string::npos) return 0;
    std::vector<std::string> args;
    std::istringstream in(s);
    std::string a;
    while (std::getline(in, a) && args.size() < 24)
        args.push_back(a);
    std::ostringstream help;
    expect_usage_error_only([&] { (void)parse_cli(args, help); });
    return 0;
}

#ifndef RW_NO_REPORT
// `rstwatch report` on any input (NDJSON from a fleet is untrusted: any host
// can write anything): bytes -> lines (plain or gzip) -> parser -> aggregator
// -> findings -> both formats. The first byte picks the reader's buffer size
// (small ones exercise lines split across chunks) and the middlebox timeout.
int report(const std::uint8_t *data, std::size_t size) {
    if (size < 1) return 0;
    const std::uint8_t sel = data[0];
    const std::size_t buffer = std::size_t(64) << (sel & 7); // 64 B .. 8 KiB
    std::optional<std::chrono::milliseconds> mb;
    if (sel & 0x08) mb = std::chrono::seconds(350);
    ReportEngine engine(mb);
    auto reader = LineReader::from_memory(
        std::string(reinterpret_cast<const char *>(data) + 1, size - 1), "fuzz", buffer);
    engine.read(*reader);
    ReportResult r = engine.finish();
    std::string json;
    format_report_json(r, "fuzzhost", 1'800'000'000'000'000'000, json);
    CheckingSink(true, false).write(json);
    std::string text;
    format_report_text(r, text);
    if (!text.empty()) CheckingSink(false, false).write(text);
    return 0;
}
#endif

} // namespace

const std::vector<Entry> &targets() {
    static const std::vector<Entry> t = {
        {"decode", decode}, {"pipeline", pipeline}, {"units", units},
        {"events", events}, {"cgroup", cgroup},     {"cli", cli},
#ifndef RW_NO_REPORT
        {"report", report},
#else
        {"report", nullptr}, // this build has no `rstwatch report`
#endif
    };
    return t;
}

bool known(std::string_view name) {
    for (const auto &e : targets())
        if (e.name == name) return true;
    return false;
}

Target find(std::string_view name) {
    for (const auto &e : targets())
        if (e.name == name) return e.run;
    return nullptr;
}

} // namespace rwfuzz
