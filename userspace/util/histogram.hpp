// log2 histogram in the shape the bcc/libbpf-tools print (print_log2_hist).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace rstwatch {

class Log2Histogram {
  public:
    static constexpr int kBuckets = 64;
    // Bucket 0 holds 0; bucket i (>=1) holds [2^(i-1), 2^i - 1].
    static int bucket_of(std::uint64_t v);
    void add(std::uint64_t v) {
        ++counts_[std::size_t(bucket_of(v))];
        ++total_;
    }
    std::uint64_t total() const { return total_; }
    std::uint64_t count(int bucket) const { return counts_[std::size_t(bucket)]; }
    static std::uint64_t low(int bucket) { return bucket == 0 ? 0 : (1ull << (bucket - 1)); }
    static std::uint64_t high(int bucket) { return bucket == 0 ? 0 : (1ull << bucket) - 1; }
    // Rows from the first to the last non-empty bucket, bars of `width` stars.
    std::string render(std::string_view unit, int width = 40) const;

  private:
    std::array<std::uint64_t, kBuckets> counts_{};
    std::uint64_t total_ = 0;
};

} // namespace rstwatch
