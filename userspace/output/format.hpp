// Format stage: events to bytes. One implementation per output format; both
// append to a caller-owned buffer that the sink writes out.
#pragma once

#include <memory>
#include <string>

#include "event/events.hpp"

namespace rstwatch {

class Formatter {
  public:
    virtual ~Formatter() = default;
    virtual void session_start(std::string &out, const SessionStart &e) = 0;
    virtual void reset(std::string &out, const ResetEvent &e) = 0;
    virtual void timeout(std::string &out, const TimeoutEvent &e) = 0;
    virtual void connection_closed(std::string &out, const ClosedEvent &e) = 0;
    virtual void keepalive_set(std::string &out, const KeepaliveSetEvent &e) = 0;
    virtual void lost(std::string &out, const LostEvent &e) = 0;
    virtual void process_summary(std::string &out, std::int64_t ts_ns, const ProcessSummary &e) = 0;
    virtual void session_summary(std::string &out, const SessionSummary &e) = 0;
    virtual void audit_socket(std::string &out, const AuditSocket &e) = 0;
    virtual void audit_process(std::string &out, const AuditProcess &e) = 0;
};

std::unique_ptr<Formatter> make_json_formatter(std::string host);
// Aligned lines for a terminal; ANSI colours only when `color`.
std::unique_ptr<Formatter> make_text_formatter(bool color);

} // namespace rstwatch
