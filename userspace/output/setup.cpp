#include "output/setup.hpp"

#include <cstdlib>
#include <string>
#include <unistd.h>

#include "util/cgroup_fs.hpp"

namespace rstwatch {

namespace {

// --color auto: only for a terminal that can show it (and never with NO_COLOR).
bool want_color(Color c) {
    if (c != Color::auto_) return c == Color::always;
    const char *term = std::getenv("TERM");
    return isatty(STDOUT_FILENO) && !std::getenv("NO_COLOR") &&
           !(term && std::string(term) == "dumb");
}

} // namespace

std::unique_ptr<Formatter> make_formatter(const OutputOptions &o) {
    if (o.format == Format::text) return make_text_formatter(want_color(o.color));
    return make_json_formatter(host_name());
}

std::unique_ptr<Sink> make_sink(const OutputOptions &o) {
    if (o.path.empty()) return make_stdout_sink();
    return make_file_sink(FileSinkOptions{o.path, o.rotate_size, o.rotate_keep});
}

} // namespace rstwatch
