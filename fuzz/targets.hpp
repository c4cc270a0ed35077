// Fuzz targets: each takes arbitrary bytes and must neither crash, nor leak,
// nor trip a sanitizer, nor break its invariants (abort() when it does).
// Built as libFuzzer binaries by fuzz/CMakeLists.txt (clang, -DRW_FUZZ=ON) and,
// with any compiler, replayed over fuzz/corpus/<name>/ by the unit tests.
// A new target is one row of targets() plus a corpus directory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace rwfuzz {

using Target = int (*)(const std::uint8_t *data, std::size_t size);

struct Entry {
    std::string_view name; // also the corpus directory fuzz/corpus/<name>/
    Target run;            // nullptr: compiled out of this build
};

const std::vector<Entry> &targets();
Target find(std::string_view name); // nullptr if unknown or compiled out
bool known(std::string_view name);

} // namespace rwfuzz
