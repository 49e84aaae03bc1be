// Checks that an expression fails the way ckconv documents: with a ckconv::Error of a given
// kind (which is the process exit code, README "Exit codes") and, optionally, a message holding
// a fragment. A throw of the wrong kind or of another exception type fails the check, so a test
// cannot pass on an unrelated failure.
#pragma once

#include <doctest/doctest.h>

#include <exception>
#include <string>
#include <utility>

#include "core/error.h"

namespace ckconv::test {

inline const char* error_kind_name(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kUsage:
      return "kUsage";
    case ErrorKind::kBadInput:
      return "kBadInput";
    case ErrorKind::kMismatch:
      return "kMismatch";
    case ErrorKind::kIo:
      return "kIo";
    case ErrorKind::kExists:
      return "kExists";
    case ErrorKind::kInternal:
      return "kInternal";
  }
  return "unknown kind";
}

// What running an action threw: a ckconv::Error (its kind and message), another exception
// (its message), or nothing.
struct ThrownError {
  enum class Outcome { kNothing, kError, kOtherException };
  Outcome outcome = Outcome::kNothing;
  ErrorKind kind = ErrorKind::kInternal;
  std::string message;

  // Why the check failed, or "" when `expected` was thrown with `fragment` in its message.
  std::string mismatch(ErrorKind expected, const std::string& fragment) const {
    switch (outcome) {
      case Outcome::kNothing:
        return "nothing was thrown";
      case Outcome::kOtherException:
        return "threw a non-ckconv exception: " + message;
      case Outcome::kError:
        break;
    }
    if (kind != expected)
      return std::string("threw ") + error_kind_name(kind) + " instead of " +
             error_kind_name(expected) + ": " + message;
    if (message.find(fragment) == std::string::npos)
      return "message \"" + message + "\" lacks \"" + fragment + "\"";
    return "";
  }
};

template <typename Action>
ThrownError run_and_catch(Action&& action) {
  ThrownError thrown;
  try {
    std::forward<Action>(action)();
  } catch (const Error& error) {
    thrown.outcome = ThrownError::Outcome::kError;
    thrown.kind = error.kind();
    thrown.message = error.what();
  } catch (const std::exception& error) {
    thrown.outcome = ThrownError::Outcome::kOtherException;
    thrown.message = error.what();
  }
  return thrown;
}

}  // namespace ckconv::test

// `expression` must throw a ckconv::Error of `expected_kind` whose message contains `fragment`.
#define CHECK_THROWS_KIND_WITH(expression, expected_kind, fragment)                   \
  do {                                                                                \
    const std::string ckconv_mismatch_ = ::ckconv::test::run_and_catch([&] {          \
                                           static_cast<void>(expression);             \
                                         }).mismatch(expected_kind, fragment);        \
    CHECK_MESSAGE(ckconv_mismatch_.empty(), #expression << ": " << ckconv_mismatch_); \
  } while (0)

// `expression` must throw a ckconv::Error of `expected_kind`.
#define CHECK_THROWS_KIND(expression, expected_kind) \
  CHECK_THROWS_KIND_WITH(expression, expected_kind, "")
