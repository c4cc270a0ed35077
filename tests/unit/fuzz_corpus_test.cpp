// Replays every fuzz corpus (seeds and past crashers) through its target, with
// this build's compiler and sanitizers: a fixed crash stays fixed without
// libFuzzer. Each corpus directory must name a target and each target must
// have a corpus.
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <iterator>
#include <unistd.h>

#include "../../fuzz/targets.hpp"

namespace fs = std::filesystem;

TEST(FuzzCorpus, EveryTargetHasACorpusAndEveryInputPasses) {
    // The cli target resolves relative --output names: keep them in a scratch dir.
    char tmpl[] = "/tmp/rwtest-fuzzcwd-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    const fs::path old = fs::current_path();
    fs::current_path(tmpl);
    for (const auto &t : rwfuzz::targets())
        EXPECT_TRUE(fs::is_directory(fs::path(RW_FUZZ_CORPUS_DIR) / std::string(t.name)))
            << "fuzz/corpus/" << t.name << " missing";
    std::size_t inputs = 0;
    for (const auto &dir : fs::directory_iterator(RW_FUZZ_CORPUS_DIR)) {
        const std::string name = dir.path().filename().string();
        ASSERT_TRUE(rwfuzz::known(name)) << "fuzz/corpus/" << name << " has no target";
        rwfuzz::Target run = rwfuzz::find(name);
        if (!run) continue; // compiled out of this build
        for (const auto &f : fs::directory_iterator(dir.path())) {
            std::ifstream in(f.path(), std::ios::binary);
            std::string bytes((std::istreambuf_iterator<char>(in)), {});
            SCOPED_TRACE(f.path().string());
            EXPECT_EQ(run(reinterpret_cast<const std::uint8_t *>(bytes.data()), bytes.size()), 0);
            ++inputs;
        }
    }
    EXPECT_GT(inputs, 0u);
    fs::current_path(old);
    fs::remove_all(tmpl);
}
