// rstwatch report, stage 1: bytes in. Reads one input (a file or stdin, plain
// or gzip, told apart by the gzip magic bytes, not by the file name) and hands
// out chunks of whole lines in a buffer with readable padding after them, so
// the JSON parser runs on the lines in place without copying them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace rstwatch {

// Bytes after a chunk that the parser may read (simdjson needs 64).
inline constexpr std::size_t kReportPadding = 64;
// Longer lines are skipped and counted: no rstwatch event comes near this, and
// the cap keeps memory bounded whatever the input holds.
inline constexpr std::size_t kReportMaxLine = 1u << 20;

struct LineChunk {
    const char *data = nullptr;
    std::size_t size = 0;     // whole lines; the last one may lack '\n' at end of input
    std::size_t capacity = 0; // readable bytes from data (>= size + kReportPadding)
    // Lines longer than the buffer, dropped before this chunk (each counts as
    // one line of the input, class too_long).
    std::uint64_t skipped_long_lines = 0;
};

struct InputStats {
    bool gzip = false;
    std::uint64_t bytes_read = 0; // from the file
    std::uint64_t bytes = 0;      // after decompression
    bool truncated = false;       // gzip stream ended before its trailer
    bool corrupt = false;         // gzip data error or trailing garbage
    std::string gzip_error;       // zlib's message when corrupt
};

class ByteSource;

class LineReader {
  public:
    // "-" reads stdin. Throws UsageError (exit 2) when the file is missing,
    // unreadable or a directory. buffer_size: bytes per chunk (tests use small).
    static std::unique_ptr<LineReader> open(const std::string &path,
                                            std::size_t buffer_size = 4u << 20);
    // Throws UsageError like open() if `path` cannot be read; reads nothing.
    static void check(const std::string &path);
    // Reads from an already open descriptor (owned if own_fd).
    static std::unique_ptr<LineReader> from_fd(int fd, std::string name, bool own_fd,
                                               std::size_t buffer_size = 4u << 20);
    // Reads bytes held in memory (tests, and anything already buffered).
    static std::unique_ptr<LineReader> from_memory(std::string data, std::string name,
                                                   std::size_t buffer_size = 4u << 20);
    ~LineReader();

    // The next chunk of whole lines; false at end of input. Read errors throw
    // UsageError naming the input; gzip damage ends the input and is recorded
    // in stats() instead.
    bool next(LineChunk &chunk);

    const std::string &name() const { return name_; }
    const InputStats &stats() const;

  private:
    LineReader(std::unique_ptr<ByteSource> src, std::string name, std::size_t buffer_size);

    std::unique_ptr<ByteSource> src_;
    std::string name_;
    std::unique_ptr<char[]> buf_;
    std::size_t cap_;       // usable bytes (allocation is cap_ + padding)
    std::size_t begin_ = 0; // unconsumed data [begin_, end_)
    std::size_t end_ = 0;
    bool eof_ = false;
    bool skipping_ = false; // inside a line too long for the buffer
    std::uint64_t skipped_ = 0;
};

} // namespace rstwatch
