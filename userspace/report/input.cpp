#include "report/input.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>
#include <zlib.h>

#include "util/error.hpp"
#include "util/text_safety.hpp"

namespace rstwatch {

class ByteSource {
  public:
    virtual ~ByteSource() = default;
    // Up to n bytes into dst; 0 at end of input.
    virtual std::size_t read(char *dst, std::size_t n) = 0;
    InputStats stats;
};

namespace {

[[noreturn]] void unreadable(const std::string &name, int err) {
    throw UsageError("cannot read input " + terminal_safe(name) + ": " + std::strerror(err));
}

// Reads a descriptor; the first bytes were already read to look for the gzip
// magic and are served from `prefix` first.
class FdSource : public ByteSource {
  public:
    FdSource(int fd, bool own, std::string name, std::string prefix)
        : fd_(fd), own_(own), name_(std::move(name)), prefix_(std::move(prefix)) {}
    ~FdSource() override {
        if (own_) ::close(fd_);
    }

    std::size_t read(char *dst, std::size_t n) override {
        std::size_t got = raw_read(dst, n);
        stats.bytes += got;
        return got;
    }

    // Without decompression accounting (the gzip source counts its own output).
    std::size_t raw_read(char *dst, std::size_t n) {
        if (pos_ < prefix_.size()) {
            std::size_t k = std::min(n, prefix_.size() - pos_);
            std::memcpy(dst, prefix_.data() + pos_, k);
            pos_ += k;
            if (pos_ == prefix_.size()) std::string().swap(prefix_), pos_ = 0;
            return k;
        }
        if (fd_ < 0) return 0;
        for (;;) {
            ssize_t r = ::read(fd_, dst, n);
            if (r >= 0) {
                stats.bytes_read += std::size_t(r);
                return std::size_t(r);
            }
            if (errno != EINTR) unreadable(name_, errno);
        }
    }

  private:
    int fd_;
    bool own_;
    std::string name_;
    std::string prefix_;
    std::size_t pos_ = 0;
};

// Bytes in memory, served like a descriptor.
class MemorySource : public FdSource {
  public:
    MemorySource(std::string data, std::string name)
        : FdSource(-1, false, std::move(name), std::move(data)) {}
};

// gzip, including several concatenated members (`cat a.gz b.gz`, as some
// log shippers write). A stream that stops before its trailer is "truncated";
// a data error or trailing bytes that are not another member is "corrupt".
// Either way the bytes decompressed so far are used.
class GzipSource : public ByteSource {
  public:
    explicit GzipSource(std::unique_ptr<FdSource> in) : in_(std::move(in)), inbuf_(256u << 10) {
        std::memset(&zs_, 0, sizeof(zs_));
        if (inflateInit2(&zs_, 16 + MAX_WBITS) != Z_OK)
            throw Error(Exit::runtime, "zlib: cannot initialise the gzip decoder");
        stats.gzip = true;
    }
    ~GzipSource() override { inflateEnd(&zs_); }

    std::size_t read(char *dst, std::size_t n) override {
        std::size_t produced = 0;
        while (produced == 0 && !done_) {
            if (zs_.avail_in < 2 && !in_eof_) refill();
            if (member_ended_) {
                if (zs_.avail_in == 0) {
                    done_ = true;
                    break;
                }
                if (zs_.avail_in >= 2 && zs_.next_in[0] == 0x1f && zs_.next_in[1] == 0x8b) {
                    inflateReset(&zs_);
                    member_ended_ = false;
                } else if (only_zeros()) {
                    // gzip(1) ignores trailing zero padding (tape blocks) too.
                    zs_.avail_in = 0;
                    continue;
                } else {
                    stats.corrupt = true;
                    stats.gzip_error = "trailing data after the gzip stream";
                    done_ = true;
                    break;
                }
            }
            if (zs_.avail_in == 0 && in_eof_) {
                stats.truncated = true;
                done_ = true;
                break;
            }
            zs_.next_out = reinterpret_cast<Bytef *>(dst);
            zs_.avail_out = uInt(n);
            int rc = inflate(&zs_, Z_NO_FLUSH);
            produced = n - zs_.avail_out;
            if (rc == Z_STREAM_END) {
                member_ended_ = true;
            } else if (rc == Z_BUF_ERROR) {
                if (zs_.avail_in == 0 && in_eof_) {
                    stats.truncated = true;
                    done_ = true;
                }
            } else if (rc != Z_OK) {
                stats.corrupt = true;
                stats.gzip_error = zs_.msg ? zs_.msg : "invalid gzip data";
                done_ = true;
            }
        }
        stats.bytes += produced;
        stats.bytes_read = in_->stats.bytes_read;
        return produced;
    }

  private:
    void refill() {
        // Keep unconsumed input (at most one byte here) at the front.
        std::size_t keep = zs_.avail_in;
        if (keep) std::memmove(inbuf_.data(), zs_.next_in, keep);
        std::size_t got =
            in_->raw_read(reinterpret_cast<char *>(inbuf_.data()) + keep, inbuf_.size() - keep);
        if (got == 0) in_eof_ = true;
        zs_.next_in = inbuf_.data();
        zs_.avail_in = uInt(keep + got);
    }

    bool only_zeros() {
        for (;;) {
            for (uInt i = 0; i < zs_.avail_in; ++i)
                if (zs_.next_in[i] != 0) return false;
            zs_.avail_in = 0;
            if (in_eof_) return true;
            refill();
            if (zs_.avail_in == 0) return true;
        }
    }

    std::unique_ptr<FdSource> in_;
    std::vector<Bytef> inbuf_;
    z_stream zs_;
    bool in_eof_ = false;
    bool member_ended_ = false;
    bool done_ = false;
};

std::unique_ptr<ByteSource> make_source(int fd, bool own, const std::string &name) {
    // Read enough to see the magic bytes (a pipe may deliver one byte first).
    std::string prefix(65536, '\0');
    std::size_t got = 0;
    for (;;) {
        ssize_t r = ::read(fd, prefix.data() + got, prefix.size() - got);
        if (r < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            if (own) ::close(fd);
            unreadable(name, e);
        }
        if (r == 0) break;
        got += std::size_t(r);
        if (got >= 2) break;
    }
    prefix.resize(got);
    const bool gzip =
        got >= 2 && std::uint8_t(prefix[0]) == 0x1f && std::uint8_t(prefix[1]) == 0x8b;
    auto fdsrc = std::make_unique<FdSource>(fd, own, name, std::move(prefix));
    fdsrc->stats.bytes_read = got;
    if (gzip) return std::make_unique<GzipSource>(std::move(fdsrc));
    return fdsrc;
}

} // namespace

LineReader::LineReader(std::unique_ptr<ByteSource> src, std::string name, std::size_t buffer_size)
    : src_(std::move(src)), name_(std::move(name)), buf_(new char[buffer_size + kReportPadding]),
      cap_(buffer_size) {
    std::memset(buf_.get() + cap_, 0, kReportPadding);
}

LineReader::~LineReader() = default;

namespace {

int open_input(const std::string &path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        throw UsageError("cannot open input " + terminal_safe(path) + ": " + std::strerror(e) +
                         (e == ENOENT ? " (check the path; use - for stdin)" : ""));
    }
    struct stat st {};
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        ::close(fd);
        throw UsageError("cannot read input " + terminal_safe(path) +
                         ": it is a directory (give the NDJSON files in it)");
    }
    return fd;
}

} // namespace

void LineReader::check(const std::string &path) {
    if (path != "-") ::close(open_input(path));
}

std::unique_ptr<LineReader> LineReader::open(const std::string &path, std::size_t buffer_size) {
    if (path == "-") return from_fd(STDIN_FILENO, "<stdin>", false, buffer_size);
    return from_fd(open_input(path), path, true, buffer_size);
}

std::unique_ptr<LineReader> LineReader::from_fd(int fd, std::string name, bool own_fd,
                                                std::size_t buffer_size) {
    auto src = make_source(fd, own_fd, name);
    return std::unique_ptr<LineReader>(
        new LineReader(std::move(src), std::move(name), std::max<std::size_t>(buffer_size, 64)));
}

std::unique_ptr<LineReader> LineReader::from_memory(std::string data, std::string name,
                                                    std::size_t buffer_size) {
    const std::uint64_t n = data.size();
    const bool gzip = n >= 2 && std::uint8_t(data[0]) == 0x1f && std::uint8_t(data[1]) == 0x8b;
    auto mem = std::make_unique<MemorySource>(std::move(data), name);
    mem->stats.bytes_read = n;
    std::unique_ptr<ByteSource> src;
    if (gzip)
        src = std::make_unique<GzipSource>(std::move(mem));
    else
        src = std::move(mem);
    return std::unique_ptr<LineReader>(
        new LineReader(std::move(src), std::move(name), std::max<std::size_t>(buffer_size, 64)));
}

const InputStats &LineReader::stats() const {
    return src_->stats;
}

bool LineReader::next(LineChunk &chunk) {
    char *buf = buf_.get();
    for (;;) {
        if (begin_ > 0) {
            std::memmove(buf, buf + begin_, end_ - begin_);
            end_ -= begin_;
            begin_ = 0;
        }
        std::size_t scanned = end_;
        if (!eof_ && end_ < cap_) {
            std::size_t n = src_->read(buf + end_, cap_ - end_);
            if (n == 0)
                eof_ = true;
            else
                end_ += n;
        }
        if (skipping_) {
            auto *nl = static_cast<char *>(std::memchr(buf, '\n', end_));
            if (!nl) {
                end_ = 0; // still inside the long line: drop it
                if (eof_) {
                    skipping_ = false;
                    ++skipped_;
                    break;
                }
                continue;
            }
            skipping_ = false;
            ++skipped_;
            begin_ = std::size_t(nl - buf) + 1;
            continue;
        }
        // Only the new bytes can hold the first newline of a partial line.
        void *last = end_ > scanned ? memrchr(buf + scanned, '\n', end_ - scanned) : nullptr;
        if (!last && scanned > 0) last = memrchr(buf, '\n', scanned);
        std::size_t size = 0;
        if (last)
            size = std::size_t(static_cast<char *>(last) - buf) + 1;
        else if (eof_)
            size = end_; // a last line without '\n'
        else if (end_ == cap_) {
            skipping_ = true; // a line longer than the whole buffer
            end_ = 0;
            continue;
        } else {
            continue;
        }
        if (size == 0) break;
        chunk.data = buf;
        chunk.size = size;
        chunk.capacity = cap_ + kReportPadding;
        chunk.skipped_long_lines = skipped_;
        skipped_ = 0;
        begin_ = size;
        return true;
    }
    // End of input: report lines skipped after the last chunk with an empty chunk.
    if (skipped_) {
        chunk.data = buf;
        chunk.size = 0;
        chunk.capacity = cap_ + kReportPadding;
        chunk.skipped_long_lines = skipped_;
        skipped_ = 0;
        return true;
    }
    return false;
}

} // namespace rstwatch
