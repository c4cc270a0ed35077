#include "agent/signals.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <sys/signalfd.h>

#include "util/error.hpp"

namespace rstwatch {

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

} // namespace rstwatch
