#include "rstwatch/output_setup.hpp"

#include "rstwatch/enrich.hpp"

namespace rstwatch {

std::unique_ptr<Formatter> make_formatter(const OutputOptions &) {
    return make_json_formatter(host_name());
}

std::unique_ptr<Sink> make_sink(const OutputOptions &o) {
    if (o.path.empty()) return make_stdout_sink();
    return make_file_sink(FileSinkOptions{o.path, o.rotate_size, o.rotate_keep});
}

} // namespace rstwatch
