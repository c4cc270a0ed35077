#include "output/output.hpp"

namespace rstwatch {

Output::Output(std::unique_ptr<Sink> sink) : sink_(std::move(sink)) {
    buf_.reserve(1 << 16);
}

bool Output::flush() {
    if (buf_.empty() || closed_) return !closed_;
    WriteResult r = sink_->write(buf_);
    for (auto [end, kind] : event_ends_) {
        if (end <= r.bytes) {
            ++emitted_;
            ++emitted_by_kind_[std::size_t(kind)];
        } else {
            ++dropped_;
        }
    }
    if (r.status == WriteStatus::closed) closed_ = true;
    event_ends_.clear();
    buf_.clear();
    return !closed_;
}

} // namespace rstwatch
