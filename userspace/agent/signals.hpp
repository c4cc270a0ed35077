// Signal handling for long-running commands: SIGINT/SIGTERM end a session,
// SIGHUP reopens outputs; all arrive through one signalfd in the event loop.
#pragma once

#include "util/fd.hpp"

namespace rstwatch {

// Blocks SIGINT, SIGTERM and SIGHUP (call before any thread starts, so threads
// inherit the mask and the signalfd is the only receiver), ignores SIGPIPE
// (a closed stdout is an EPIPE write error, handled by the sink), and returns
// a non-blocking signalfd for them.
UniqueFd block_session_signals();

} // namespace rstwatch
