// Builds the formatter and sink that OutputOptions ask for.
#pragma once

#include <memory>

#include "output/format.hpp"
#include "event/options.hpp"
#include "output/sink.hpp"

namespace rstwatch {

std::unique_ptr<Formatter> make_formatter(const OutputOptions &o);
std::unique_ptr<Sink> make_sink(const OutputOptions &o);

} // namespace rstwatch
