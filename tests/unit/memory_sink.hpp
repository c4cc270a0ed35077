// A Sink that keeps what is written, and the NDJSON lines of it, for tests of
// the stages that write output.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "output/sink.hpp"

namespace testutil {

class MemorySink final : public rstwatch::Sink {
  public:
    explicit MemorySink(std::string &to) : to_(to) {}
    rstwatch::WriteResult write(std::string_view lines) override {
        to_.append(lines);
        return {rstwatch::WriteStatus::ok, lines.size()};
    }

  private:
    std::string &to_;
};

// Every line of `text` parsed as JSON.
inline std::vector<nlohmann::json> json_lines(const std::string &text) {
    std::vector<nlohmann::json> out;
    std::size_t pos = 0, nl;
    while ((nl = text.find('\n', pos)) != std::string::npos) {
        out.push_back(nlohmann::json::parse(text.substr(pos, nl - pos)));
        pos = nl + 1;
    }
    return out;
}

} // namespace testutil
