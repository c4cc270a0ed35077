#include "probe/probe_policy.hpp"

#include <algorithm>
#include <cmath>

namespace rstwatch::probe {

const char *outcome_name(Outcome o) {
    switch (o) {
    case Outcome::alive:
        return "alive";
    case Outcome::reset:
        return "reset";
    case Outcome::drop:
        return "drop";
    case Outcome::closed_by_server:
        return "closed_by_server";
    case Outcome::error:
        return "error";
    case Outcome::cancelled:
        return "cancelled";
    }
    return "error";
}

const char *stop_reason_name(StopReason r) {
    switch (r) {
    case StopReason::running:
        return "running";
    case StopReason::precision:
        return "precision";
    case StopReason::resolution:
        return "resolution";
    case StopReason::below_min:
        return "below_min";
    case StopReason::above_max:
        return "above_max";
    case StopReason::server_first:
        return "server_first";
    case StopReason::max_time:
        return "max_time";
    case StopReason::ladder:
        return "ladder";
    case StopReason::no_connection:
        return "no_connection";
    case StopReason::interrupted:
        return "interrupted";
    }
    return "running";
}

namespace {

// TCP_KEEPIDLE takes whole seconds (1..32767).
milliseconds whole_seconds(double ms) {
    long long s = std::llround(ms / 1000.0);
    return milliseconds(std::clamp<long long>(s, 1, 32767) * 1000);
}

} // namespace

SearchPolicy::SearchPolicy(PolicyConfig cfg) : cfg_(std::move(cfg)) {
    if (cfg_.connections == 0) cfg_.connections = 1;
}

milliseconds SearchPolicy::round_cost(milliseconds t) const {
    // The keepalive timer may fire up to 1/8 of its delay late (timer wheel).
    return t + t / 8 + cfg_.interval + milliseconds(2000);
}

bool SearchPolicy::tried(milliseconds t) const {
    return std::find(tried_.begin(), tried_.end(), t) != tried_.end();
}

bool SearchPolicy::precision_met() const {
    if (!lower_ || !upper_) return false;
    const milliseconds width = *upper_ > *lower_ ? *upper_ - *lower_ : milliseconds(0);
    if (cfg_.precision.absolute) return width <= *cfg_.precision.absolute;
    return double(width.count()) <= cfg_.precision.fraction * double(lower_->count());
}

std::vector<milliseconds> SearchPolicy::next_round(milliseconds time_left) {
    if (done()) return {};
    std::vector<milliseconds> want;
    if (rounds_ == 0) {
        if (!cfg_.ladder.empty()) {
            want = cfg_.ladder;
        } else {
            // Nothing known yet: spread over [min, max] geometrically, since a
            // timeout of 30 s and one of 2 h are equally plausible.
            const unsigned n = cfg_.connections;
            const double lo = double(cfg_.min.count()), hi = double(cfg_.max.count());
            for (unsigned i = 0; i < n; ++i) {
                double f = n == 1 ? 0.0 : double(i) / double(n - 1);
                want.push_back(whole_seconds(lo * std::pow(hi / lo, f)));
            }
        }
    } else {
        if (answers_ == 0) {
            stop(StopReason::no_connection);
            return {};
        }
        if (!cfg_.ladder.empty()) {
            stop(StopReason::ladder);
            return {};
        }
        if (server_close_ && !upper_) {
            stop(StopReason::server_first);
            return {};
        }
        if (!upper_) {
            stop(StopReason::above_max);
            return {};
        }
        if (!lower_) {
            stop(StopReason::below_min);
            return {};
        }
        if (precision_met()) {
            stop(StopReason::precision);
            return {};
        }
        // Evenly inside (lower, upper): each round narrows by connections + 1.
        // The bracket is in probe times, which trail T by the keepalive
        // timer's slack: aim T so that its probe lands on the target.
        const double lo = double(lower_->count()), hi = double(upper_->count());
        const double k = 1.0 + slack();
        const unsigned n = cfg_.connections;
        for (unsigned i = 1; i <= n; ++i)
            want.push_back(whole_seconds((lo + (hi - lo) * double(i) / double(n + 1)) / k));
        // Fewer whole seconds inside than connections: take every one of them
        // (rounding may have made some candidates equal).
        const long long first = (long long)std::floor(lo / k / 1000.0) + 1;
        const long long last = (long long)std::ceil(hi / 1000.0) - 1;
        if (last - first + 1 <= (long long)n)
            for (long long s = first; s <= last; ++s)
                want.push_back(milliseconds(s * 1000));
    }

    std::vector<milliseconds> out;
    bool cut_by_time = false;
    std::sort(want.begin(), want.end());
    for (milliseconds t : want) {
        if (out.size() >= cfg_.connections && rounds_ > 0) break;
        if (std::find(out.begin(), out.end(), t) != out.end()) continue;
        if (rounds_ > 0 && (tried(t) || !still_needed(t))) continue;
        // A probe never leaves early: T at or past the upper bound dies; one
        // whose probe is expected at or before the lower bound survives.
        if (rounds_ > 0 &&
            (t >= *upper_ || double(t.count()) * (1.0 + slack()) <= double(lower_->count())))
            continue;
        if (round_cost(t) > time_left) {
            cut_by_time = true;
            continue;
        }
        out.push_back(t);
    }
    if (out.empty()) {
        stop(cut_by_time ? StopReason::max_time : StopReason::resolution);
        return {};
    }
    ++rounds_;
    tried_.insert(tried_.end(), out.begin(), out.end());
    return out;
}

double SearchPolicy::slack() const {
    return slack_n_ ? slack_sum_ / double(slack_n_) : 0.0;
}

void SearchPolicy::record(const Observation &o) {
    // How late this probe left (timer wheel: 0 to 1/8 of T), from answers
    // that happened at the probe's time.
    if ((o.outcome == Outcome::alive || o.outcome == Outcome::reset ||
         o.outcome == Outcome::drop) &&
        o.keepidle.count() > 0) {
        slack_sum_ +=
            std::clamp(double(o.evidence.count()) / double(o.keepidle.count()) - 1.0, 0.0, 0.125);
        ++slack_n_;
    }
    switch (o.outcome) {
    case Outcome::alive:
        ++answers_;
        // Alive later than a death seen before: the timeout is not one number
        // (several paths, a middlebox under pressure). Counted, not used.
        if (upper_ && o.evidence >= *upper_)
            ++inconsistent_;
        else if (!lower_ || o.evidence > *lower_)
            lower_ = o.evidence;
        break;
    case Outcome::reset:
    case Outcome::drop:
        ++answers_;
        ++(o.outcome == Outcome::reset ? resets_ : drops_);
        if (lower_ && o.evidence <= *lower_)
            ++inconsistent_;
        else if (!upper_ || o.evidence < *upper_)
            upper_ = o.evidence;
        break;
    case Outcome::closed_by_server:
        ++answers_;
        // The server's FIN (or RST) crossed the path at this idle time: the
        // middlebox still had the state then.
        if (!server_close_ || o.evidence < *server_close_) server_close_ = o.evidence;
        if (upper_ && o.evidence >= *upper_)
            ++inconsistent_;
        else if (!lower_ || o.evidence > *lower_)
            lower_ = o.evidence;
        break;
    case Outcome::error:
    case Outcome::cancelled:
        break;
    }
}

bool SearchPolicy::still_needed(milliseconds t) const {
    if (upper_ && t >= *upper_) return false;               // dies too
    if (server_close_ && t >= *server_close_) return false; // the server ends it first
    if (lower_ && t + t / 8 <= *lower_) return false;       // survives too
    return true;
}

KeepaliveAdvice advise_keepalive(milliseconds lower) {
    KeepaliveAdvice a;
    const long long lo = lower.count();
    a.idle_s = std::uint32_t(std::clamp<long long>(lo * 8 / 10 / 1000, 1, 32767));
    // idle * 9/8 (timer slack) + interval < lower.
    const long long room = lo - (long long)a.idle_s * 1125 - 1;
    a.interval_s = std::uint32_t(std::clamp<long long>(room / 1000, 1, 75));
    a.probes = 5;
    return a;
}

} // namespace rstwatch::probe
