// One libFuzzer binary per target: RW_FUZZ_TARGET names the row of targets().
#include <cstdio>
#include <cstdlib>

#include "targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    static const rwfuzz::Target target = [] {
        rwfuzz::Target t = rwfuzz::find(RW_FUZZ_TARGET);
        if (!t) {
            std::fprintf(stderr, "no fuzz target named %s\n", RW_FUZZ_TARGET);
            std::abort();
        }
        return t;
    }();
    return target(data, size);
}
