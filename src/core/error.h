// The one error type of ckconv. Every failure carries a category that maps to a documented
// process exit code (README "Exit codes") and a message naming the file, key and expectation.
#pragma once

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace ckconv {

enum class ErrorKind {
  kUsage = 2,      // bad command line, unknown model/flavor, bad --set override
  kBadInput = 3,   // corrupt, truncated, hostile or unsupported input; key/shape/dtype mismatch
  kMismatch = 4,   // verification found a difference
  kIo = 5,         // cannot read/write/sync/rename: permissions, disk full, ...
  kExists = 6,     // output exists and --force was not given
  kInternal = 70,  // a bug in ckconv
};

// The keys an error is about, by category ("missing tensors" -> names), complete even where
// the message shows only the first few (--verbose and --json reports list them all).
using ErrorKeys = std::map<std::string, std::vector<std::string>>;

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message, ErrorKeys keys = {})
      : std::runtime_error(message), kind_(kind), keys_(std::move(keys)) {}
  ErrorKind kind() const { return kind_; }
  int exit_code() const { return static_cast<int>(kind_); }
  const ErrorKeys& keys() const { return keys_; }

 private:
  ErrorKind kind_;
  ErrorKeys keys_;
};

[[noreturn]] inline void fail(ErrorKind kind, const std::string& message) {
  throw Error(kind, message);
}
[[noreturn]] inline void fail_input(const std::string& message) {
  throw Error(ErrorKind::kBadInput, message);
}

// Internal invariant: a failure here is a ckconv bug, not bad input.
#define CKCONV_CHECK(cond)                                                                  \
  do {                                                                                      \
    if (!(cond))                                                                            \
      ::ckconv::fail(::ckconv::ErrorKind::kInternal,                                        \
                     std::string("internal check failed: " #cond " at ") + __FILE__ + ":" + \
                         std::to_string(__LINE__));                                         \
  } while (0)

}  // namespace ckconv
