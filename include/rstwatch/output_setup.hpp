// Builds the formatter and sink that OutputOptions ask for.
#pragma once

#include <memory>

#include "rstwatch/format.hpp"
#include "rstwatch/options.hpp"
#include "rstwatch/sink.hpp"

namespace rstwatch {

std::unique_ptr<Formatter> make_formatter(const OutputOptions &o);
std::unique_ptr<Sink> make_sink(const OutputOptions &o);

} // namespace rstwatch
