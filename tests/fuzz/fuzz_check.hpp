#pragma once

// The one way a fuzz target reports a broken invariant: a message naming the check and where it
// is, then abort(), which libFuzzer treats as a crash and keeps the input for.

#include <cstdio>
#include <cstdlib>

[[noreturn]] inline void fuzz_fail(const char* what, const char* file, int line) {
  std::fprintf(stderr, "%s:%d: invariant broken: %s\n", file, line, what);
  std::abort();
}

#define FUZZ_CHECK(cond)                                                                           \
  do {                                                                                             \
    if (!(cond))                                                                                   \
      fuzz_fail(#cond, __FILE__, __LINE__);                                                        \
  } while (false)
