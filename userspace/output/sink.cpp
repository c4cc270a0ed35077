#include "output/sink.hpp"

#include "util/text_safety.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fd.hpp"
#include "util/error.hpp"
#include "util/log.hpp"

namespace rstwatch {

namespace {

// Writes all of data; returns 0 or the errno of the failure.
int write_all(int fd, std::string_view data, std::size_t &written) {
    written = 0;
    while (written < data.size()) {
        ssize_t n = ::write(fd, data.data() + written, data.size() - written);
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        written += std::size_t(n);
    }
    return 0;
}

// Reports a write error once per episode: again only after a success.
class ErrorLatch {
  public:
    void failed(const std::string &what, int err) {
        if (reported_) return;
        reported_ = true;
        log_error(what + ": " + std::strerror(err) +
                  "; dropping events (counted in session_summary) "
                  "until writing works again");
    }
    void succeeded() {
        if (reported_) log_info("output is writable again");
        reported_ = false;
    }

  private:
    bool reported_ = false;
};

// Length of the whole lines at the start of `data`.
std::size_t whole_lines(std::string_view data) {
    auto nl = data.rfind('\n');
    return nl == std::string_view::npos ? 0 : nl + 1;
}

class StdoutSink final : public Sink {
  public:
    WriteResult write(std::string_view lines) override {
        std::size_t written;
        int err = write_all(STDOUT_FILENO, lines, written);
        if (!err) {
            latch_.succeeded();
            return {WriteStatus::ok, lines.size()};
        }
        if (err == EPIPE) return {WriteStatus::closed, whole_lines(lines.substr(0, written))};
        latch_.failed("writing to stdout", err);
        return {WriteStatus::dropped, whole_lines(lines.substr(0, written))};
    }
    bool is_tty() const override { return isatty(STDOUT_FILENO); }

  private:
    ErrorLatch latch_;
};

class FileSink final : public Sink {
  public:
    explicit FileSink(FileSinkOptions opts) : opts_(std::move(opts)) { open_or_throw(); }

    WriteResult write(std::string_view data) override {
        follow_rename();
        if (!fd_ && !try_open()) {
            latch_.failed("opening " + opts_.path, errno);
            return {WriteStatus::dropped, 0};
        }
        std::size_t done = 0;
        while (done < data.size()) {
            std::string_view rest = data.substr(done);
            std::size_t n = chunk_for_this_file(rest);
            if (n == 0) { // nothing more fits: next file
                rotate();
                if (!fd_) return {WriteStatus::dropped, done};
                continue;
            }
            std::size_t written;
            int err = write_all(fd_.get(), rest.substr(0, n), written);
            if (err) {
                // Keep whole lines only: cut a partial line off again.
                std::size_t whole = whole_lines(rest.substr(0, written));
                if (whole != written && ftruncate(fd_.get(), off_t(size_ + whole)) != 0)
                    log_warn("cannot remove a partial line from " + opts_.path);
                size_ += whole;
                latch_.failed("writing to " + opts_.path, err);
                return {WriteStatus::dropped, done + whole};
            }
            size_ += n;
            done += n;
        }
        latch_.succeeded();
        return {WriteStatus::ok, done};
    }

    void reopen() override {
        fd_ = UniqueFd();
        try_open();
    }

  private:
    // logrotate's create mode renames the file, creates a new one, then sends
    // SIGHUP. Lines written into the renamed file until the signal arrives
    // reach only shippers still reading it, and rsyslog's imfile has often
    // moved on by then (docs/log-pipelines.md). So follow the name as soon as
    // it names another file. Never create it here: logrotate does, and moves
    // aside a file that already exists.
    void follow_rename() {
        struct stat st {};
        if (!fd_ || ::stat(opts_.path.c_str(), &st) != 0) return;
        if (st.st_ino == ino_ && st.st_dev == dev_) return;
        int fd = ::open(opts_.path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
        if (fd < 0) return; // keep writing where we were; SIGHUP reopens
        adopt(fd);
    }

    void adopt(int fd) {
        fd_ = UniqueFd(fd);
        struct stat st {};
        if (fstat(fd, &st) == 0) {
            size_ = std::uint64_t(st.st_size);
            ino_ = st.st_ino;
            dev_ = st.st_dev;
        } else {
            size_ = 0;
            ino_ = 0;
            dev_ = 0;
        }
    }

    // How much of `rest` goes into the current file: whole lines that keep it
    // within --rotate-size; a single longer line goes alone into a fresh file.
    std::size_t chunk_for_this_file(std::string_view rest) const {
        if (!opts_.rotate_size || size_ + rest.size() <= opts_.rotate_size) return rest.size();
        std::uint64_t room = size_ < opts_.rotate_size ? opts_.rotate_size - size_ : 0;
        std::size_t fit = whole_lines(rest.substr(0, std::size_t(room)));
        if (fit == 0 && size_ == 0) fit = rest.find('\n') + 1;
        return fit;
    }

    void open_or_throw() {
        if (!try_open())
            throw UsageError("--output " + terminal_safe(opts_.path) +
                             ": cannot open for appending: " + std::strerror(errno));
    }

    bool try_open() {
        int fd = ::open(opts_.path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (fd < 0) return false;
        adopt(fd);
        return true;
    }

    void rotate() {
        // path.(N-1) -> path.N ... path -> path.1, then a fresh path.
        for (unsigned i = opts_.rotate_keep; i > 1; --i) {
            std::string from = opts_.path + "." + std::to_string(i - 1);
            std::string to = opts_.path + "." + std::to_string(i);
            std::rename(from.c_str(), to.c_str());
        }
        std::rename(opts_.path.c_str(), (opts_.path + ".1").c_str());
        fd_ = UniqueFd();
        try_open();
    }

    FileSinkOptions opts_;
    UniqueFd fd_;
    std::uint64_t size_ = 0;
    ino_t ino_ = 0; // of the open file, to notice a rename of its path
    dev_t dev_ = 0;
    ErrorLatch latch_;
};

} // namespace

std::unique_ptr<Sink> make_stdout_sink() {
    return std::make_unique<StdoutSink>();
}

std::unique_ptr<Sink> make_file_sink(const FileSinkOptions &opts) {
    return std::make_unique<FileSink>(opts);
}

} // namespace rstwatch
