#include "agent/session_loop.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <string>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "util/error.hpp"

namespace rstwatch {

namespace {

constexpr std::uint64_t kRingTag = 1, kSignalTag = 2;

} // namespace

UniqueFd block_session_signals() {
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, nullptr);
    signal(SIGPIPE, SIG_IGN);
    UniqueFd fd(signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!fd) throw Error(Exit::runtime, std::string("signalfd: ") + std::strerror(errno));
    return fd;
}

SessionLoop::SessionLoop(int ring_fd, int sigfd)
    : ep_(epoll_create1(EPOLL_CLOEXEC)), sigfd_(sigfd) {
    if (!ep_) throw Error(Exit::runtime, std::string("epoll_create1: ") + std::strerror(errno));
    watch(ring_fd, kRingTag);
    watch(sigfd, kSignalTag);
}

void SessionLoop::watch(int fd, std::uint64_t tag) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = tag;
    if (epoll_ctl(ep_.get(), EPOLL_CTL_ADD, fd, &ev) != 0)
        throw Error(Exit::runtime, std::string("epoll_ctl: ") + std::strerror(errno));
}

SessionLoop::Wake SessionLoop::wait(int timeout_ms) {
    Wake w;
    epoll_event evs[4];
    int n = epoll_wait(ep_.get(), evs, 4, timeout_ms);
    if (n < 0 && errno != EINTR)
        throw Error(Exit::runtime, std::string("epoll_wait: ") + std::strerror(errno));
    for (int i = 0; i < n; ++i) {
        if (evs[i].data.u64 == kRingTag) {
            w.ring = true;
            continue;
        }
        signalfd_siginfo si{};
        while (read(sigfd_, &si, sizeof(si)) == sizeof(si)) {
            if (si.ssi_signo == SIGHUP)
                ++w.reopen;
            else
                w.stop = true;
        }
    }
    return w;
}

} // namespace rstwatch
