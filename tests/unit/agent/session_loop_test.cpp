// The session loop of trace and enforce, with a pipe standing in for the ring
// buffer's epoll fd and real signals through the session's signalfd.
#include <gtest/gtest.h>

#include <csignal>
#include <unistd.h>

#include "agent/session_loop.hpp"

using namespace rstwatch;

namespace {

struct Pipe {
    Pipe() { EXPECT_EQ(pipe(fd), 0); }
    ~Pipe() {
        close(fd[0]);
        close(fd[1]);
    }
    int fd[2]{-1, -1};
};

} // namespace

TEST(SessionLoop, TimeoutRoundsUpAndIsZeroWhenDue) {
    EXPECT_EQ(SessionLoop::timeout_ms(5'000'001, 5'000'000), 1);
    EXPECT_EQ(SessionLoop::timeout_ms(7'000'000, 5'000'000), 2);
    EXPECT_EQ(SessionLoop::timeout_ms(5'000'000, 5'000'000), 0);
    EXPECT_EQ(SessionLoop::timeout_ms(4'000'000, 5'000'000), 0);
}

TEST(SessionLoop, RingReadinessSighupAndSigtermEachReported) {
    UniqueFd sigfd = block_session_signals();
    Pipe ring;
    SessionLoop loop(ring.fd[0], sigfd.get());

    SessionLoop::Wake idle = loop.wait(0);
    EXPECT_FALSE(idle.ring);
    EXPECT_EQ(idle.reopen, 0u);
    EXPECT_FALSE(idle.stop);

    ASSERT_EQ(write(ring.fd[1], "x", 1), 1);
    SessionLoop::Wake data = loop.wait(1000);
    EXPECT_TRUE(data.ring);
    EXPECT_FALSE(data.stop);

    char c;
    ASSERT_EQ(read(ring.fd[0], &c, 1), 1);
    ASSERT_EQ(raise(SIGHUP), 0); // blocked: queued for the signalfd
    SessionLoop::Wake hup = loop.wait(1000);
    EXPECT_FALSE(hup.ring);
    EXPECT_EQ(hup.reopen, 1u);
    EXPECT_FALSE(hup.stop);

    ASSERT_EQ(raise(SIGTERM), 0);
    SessionLoop::Wake term = loop.wait(1000);
    EXPECT_TRUE(term.stop);
    EXPECT_EQ(term.reopen, 0u);
}
