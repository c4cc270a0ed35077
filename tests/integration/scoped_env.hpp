// An environment variable set for the children a test starts while it lives
// (e.g. RSTWATCH_TEST_REFUSE_PROGRAMS), and unset again even when the test fails.
#pragma once
#include <cstdlib>
#include <string>

namespace rwtest {

class ScopedEnv {
  public:
    ScopedEnv(const char *name, const std::string &value) : name_(name) {
        setenv(name, value.c_str(), 1);
    }
    ~ScopedEnv() { unsetenv(name_); }
    ScopedEnv(const ScopedEnv &) = delete;
    ScopedEnv &operator=(const ScopedEnv &) = delete;

  private:
    const char *name_;
};

} // namespace rwtest
