// Sink stage: where formatted lines go. Write failures are outcomes, not
// exceptions: a closed pipe ends the session cleanly, a full disk drops and
// counts lines until space returns.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace rstwatch {

enum class WriteStatus {
    ok,
    closed,  // the reader went away (EPIPE): stop, exit 0
    dropped, // not written (ENOSPC, EIO, ...): counted, retried with the next batch
};

struct WriteResult {
    WriteStatus status;
    // Bytes of `lines` that are now out, always whole lines: a line cut short
    // by an error is removed again where the sink can (files).
    std::size_t bytes;
};

class Sink {
  public:
    virtual ~Sink() = default;
    // Writes whole lines (data ends with '\n').
    virtual WriteResult write(std::string_view lines) = 0;
    // SIGHUP: reopen the output file (log rotation). No-op for stdout.
    virtual void reopen() {}
    virtual bool is_tty() const { return false; }
};

// Lines to stdout. Write errors other than EPIPE are reported once on stderr.
std::unique_ptr<Sink> make_stdout_sink();

struct FileSinkOptions {
    std::string path;
    std::uint64_t rotate_size = 0; // 0: never rotate by size
    unsigned rotate_keep = 5;      // rotated files kept: path.1 ... path.N
};

// Appends to a file created with mode 0640; rotates by size (path -> path.1 ...)
// and reopens on reopen() so logrotate's create and copytruncate modes work.
// Before each write it also follows the path to a new file that replaced the
// one it has open (logrotate create: rename, create, then SIGHUP).
// Throws UsageError if the file cannot be opened.
std::unique_ptr<Sink> make_file_sink(const FileSinkOptions &opts);

} // namespace rstwatch
