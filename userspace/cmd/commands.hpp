// Subcommand entry points. Each returns the process exit code or throws Error.
#pragma once

#include "event/options.hpp"

namespace rstwatch {

int run_trace(const TraceOptions &opts);
int run_audit(const AuditOptions &opts);
int run_enforce(const EnforceOptions &opts);
int run_doctor(const DoctorOptions &opts);
int run_report(const ReportOptions &opts);

} // namespace rstwatch
