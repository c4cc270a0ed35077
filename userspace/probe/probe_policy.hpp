// rstwatch probe, search policy: which keepalive idle times (T) to try next and
// what the answers so far say about the middlebox timeout. Pure logic: no
// sockets, no clock of its own (time is passed in), so it is unit-tested with a
// fake oracle. Folder rule (probe/): event/, util/, CLI11, nlohmann_json; no libbpf.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "event/options.hpp"

namespace rstwatch::probe {

using std::chrono::milliseconds;

// How one probe connection ended.
enum class Outcome {
    alive,            // the keepalive probe at T was answered: the path still had the state
    reset,            // an RST answered the probe (ECONNRESET)
    drop,             // the probe went unanswered (ETIMEDOUT after TCP_KEEPINTVL)
    closed_by_server, // the server ended it by itself (FIN, or an RST before our probe left)
    error,            // connect failed or another error: no information
    cancelled,        // ended by rstwatch: the answer was already implied (or time ran out)
};
const char *outcome_name(Outcome o);

// --precision and the search's settings are plain option data (event/options.hpp).
using Precision = ProbePrecision;
using PolicyConfig = ProbeSearch;

// What one connection told us. `evidence` is the idle time the answer is
// about: for alive, when the probe's ACK arrived; for reset, when the RST
// arrived; for drop, when the probe left (end minus TCP_KEEPINTVL); for
// closed_by_server, when the server's FIN or RST arrived.
struct Observation {
    milliseconds keepidle{0};
    Outcome outcome = Outcome::error;
    milliseconds evidence{0};
};

enum class StopReason {
    running,
    precision,     // the bracket is as narrow as --precision asks
    resolution,    // no whole second lies strictly inside the bracket (TCP_KEEPIDLE is in s)
    below_min,     // the shortest T already died: the timeout is below --min
    above_max,     // everything up to --max survived
    server_first,  // the server closes idle connections before any middlebox does
    max_time,      // --max-time ran out
    ladder,        // --ladder: the one round is done
    no_connection, // no connection could be made
    interrupted,   // SIGINT / SIGTERM
};
const char *stop_reason_name(StopReason r);

// Timeout bracket: the state outlived `lower`, and was gone at `upper`.
struct Bracket {
    std::optional<milliseconds> lower; // longest idle the path still remembered
    std::optional<milliseconds> upper; // shortest idle after which it had forgotten
};

class SearchPolicy {
  public:
    explicit SearchPolicy(PolicyConfig cfg);

    // Keepalive idle times (whole seconds) for the next round, at most
    // `connections`, none that could not finish in `time_left`. Empty when the
    // search is over (see stop_reason()).
    std::vector<milliseconds> next_round(milliseconds time_left);
    void record(const Observation &o);
    // False once the answer of a connection probing `keepidle` is implied by
    // what is known (it can be cancelled).
    bool still_needed(milliseconds keepidle) const;
    // Time a connection probing T needs at most: keepalive timer slack
    // (up to 1/8 late), the interval, a margin.
    milliseconds round_cost(milliseconds keepidle) const;
    void stop(StopReason r) { reason_ = r; }

    Bracket bracket() const { return {lower_, upper_}; }
    StopReason stop_reason() const { return reason_; }
    bool done() const { return reason_ != StopReason::running; }
    std::optional<milliseconds> server_close() const { return server_close_; }
    unsigned resets() const { return resets_; }
    unsigned drops() const { return drops_; }
    unsigned rounds() const { return rounds_; }
    // Answers that contradicted the bracket (alive past a death): not used.
    unsigned inconsistent() const { return inconsistent_; }
    bool precision_met() const;
    // Mean observed lateness of the first probe, as a fraction of T.
    double slack() const;

  private:
    bool tried(milliseconds t) const;

    PolicyConfig cfg_;
    std::optional<milliseconds> lower_, upper_, server_close_;
    std::vector<milliseconds> tried_;
    unsigned resets_ = 0, drops_ = 0, rounds_ = 0, answers_ = 0, inconsistent_ = 0;
    StopReason reason_ = StopReason::running;
    double slack_sum_ = 0;
    unsigned slack_n_ = 0;
};

// Keepalive settings that keep a connection alive through a middlebox that
// forgets after more than `lower` of silence: idle 80 % of it, and an interval
// so that a lost probe's retry still arrives in time (idle * 9/8 timer slack
// + interval below the bound).
struct KeepaliveAdvice {
    std::uint32_t idle_s = 1, interval_s = 1, probes = 5;
};
KeepaliveAdvice advise_keepalive(milliseconds lower);

} // namespace rstwatch::probe
