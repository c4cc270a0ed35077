// Decode stage: raw bytes from the ring buffer or an iterator into validated
// record structs. Total on arbitrary input (fuzzed): never reads out of bounds,
// rejects what the BPF side cannot have produced.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <variant>

#include "rstwatch/records.h"

namespace rstwatch {

using Record = std::variant<rw_reset, rw_sockopt, rw_close, rw_enforce, rw_snapshot>;

// One record occupying exactly `size` bytes (a ring-buffer sample).
// On failure returns nullopt and, if why != nullptr, a reason.
std::optional<Record> decode_record(const void *data, std::size_t size, std::string *why = nullptr);

// A byte stream of concatenated records (an iterator's seq file). Calls on_record
// for each whole record; returns the number of bytes consumed (a trailing
// partial record is left for the caller to complete). Stops at the first
// malformed record and reports it through why.
std::size_t decode_stream(const void *data, std::size_t size,
                          const std::function<void(const Record &)> &on_record,
                          std::string *why = nullptr);

} // namespace rstwatch
