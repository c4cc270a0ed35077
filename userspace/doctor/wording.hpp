// Wording the doctor's checks share (checks.cpp, connections.cpp).
#pragma once

#include <cstdint>
#include <string>

#include "doctor/doctor.hpp"

namespace rstwatch::doctor {

// "7200 s (2h)": seconds, with the readable duration from two minutes up.
std::string secs_text(std::int64_t s);
// The bound named with its value and where it comes from.
std::string bound_text(const TimeoutBound &b);

} // namespace rstwatch::doctor
