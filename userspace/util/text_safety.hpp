// Untrusted text (process names, paths, command-line values) on its way to a
// JSON line or a terminal. A process can name itself anything but NUL: invalid
// UTF-8 would make the JSON invalid, and control characters would let it write
// escape sequences to the terminal of whoever runs rstwatch.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace rstwatch {

// Length (2..4) of the valid UTF-8 sequence at s[i] (a byte >= 0x80), or 0 if
// it is not one (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF).
std::size_t utf8_sequence_at(std::string_view s, std::size_t i);

// Appends s with every control character (C0, DEL, C1) and every byte that is
// not valid UTF-8 written as \xNN; '\n' too unless keep_newlines.
void append_terminal_safe(std::string &out, std::string_view s, bool keep_newlines = false);
std::string terminal_safe(std::string_view s, bool keep_newlines = false);

} // namespace rstwatch
