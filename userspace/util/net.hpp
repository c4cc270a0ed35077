// Addresses, ports and TCP states as they appear in output.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace rstwatch {

// Formats a 16-byte address from a record. AF_INET uses the first 4 bytes; an
// IPv4-mapped IPv6 address (::ffff:a.b.c.d) is printed as plain IPv4.
// Writes into buf (at least 46 bytes) and returns the text.
std::string_view format_addr(const std::uint8_t addr[16], std::uint16_t family, char *buf);
std::string format_addr(const std::uint8_t addr[16], std::uint16_t family);

// True when the connection runs over IPv4 on the wire: AF_INET, or AF_INET6
// with both ends IPv4-mapped.
bool is_ipv4(const std::uint8_t local[16], const std::uint8_t remote[16], std::uint16_t family);

// "ESTABLISHED", "SYN_SENT", ... ; "UNKNOWN(n)" style names never escape: an
// unknown value gives "UNKNOWN".
std::string_view tcp_state_name(unsigned state);

// Parses "ipv4[:port]"-free literals used by filters and tests; true on success.
bool parse_addr(std::string_view text, std::uint8_t out[16], std::uint16_t &family);

} // namespace rstwatch
