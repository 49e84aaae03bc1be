#include "core/interrupt.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

namespace ckconv {
namespace {

// Process-wide by nature: a signal handler can reach nothing else.
std::atomic<int> received_signal{0};
std::atomic<bool> pause_requested{false};  // CKCONV_TEST_PAUSE_AT is set
std::atomic<bool> paused_once{false};
Activity activity;  // only touched by the main thread

void on_signal(int signal_number) {
  int expected = 0;
  if (received_signal.compare_exchange_strong(expected, signal_number)) return;
  // A second signal: the user insists. Only async-signal-safe calls from here.
  static const char message[] =
      "ckconv: interrupted again; exiting now (the next run removes leftovers)\n";
  ssize_t ignored = ::write(STDERR_FILENO, message, sizeof(message) - 1);
  (void)ignored;
  ::_exit(128 + signal_number);
}

const char* signal_name(int signal_number) {
  switch (signal_number) {
    case SIGINT:
      return "SIGINT";
    case SIGTERM:
      return "SIGTERM";
    case SIGHUP:
      return "SIGHUP";
    default:
      return "signal";
  }
}

}  // namespace

Interrupted::Interrupted(int signal_number)
    : std::runtime_error(std::string("interrupted (") + signal_name(signal_number) + ")"),
      signal_number_(signal_number) {}

void install_interrupt_handlers() {
  struct sigaction action;
  ::memset(&action, 0, sizeof(action));
  action.sa_handler = on_signal;
  ::sigemptyset(&action.sa_mask);
  // Restart interrupted system calls: the flag is polled between blocks, and an EINTR in
  // the middle of a read or write would only turn into a confusing I/O error.
  action.sa_flags = SA_RESTART;
  for (int signal_number : {SIGINT, SIGTERM, SIGHUP}) {
    // A signal ignored from the start stays ignored: nohup ignores SIGHUP so the run outlives
    // its terminal, and a script's background jobs ignore SIGINT so Ctrl-C spares them.
    struct sigaction inherited;
    if (::sigaction(signal_number, nullptr, &inherited) == 0 && inherited.sa_handler == SIG_IGN)
      continue;
    ::sigaction(signal_number, &action, nullptr);
  }
  const char* pause = std::getenv("CKCONV_TEST_PAUSE_AT");
  pause_requested = pause != nullptr && *pause != '\0';
}

int interrupted_signal() {
  return received_signal.load(std::memory_order_relaxed);
}

void throw_if_interrupted() {
  if (pause_requested.load(std::memory_order_relaxed) && !paused_once.load())
    test_pause_point(activity.key);
  const int signal_number = interrupted_signal();
  if (signal_number != 0) throw Interrupted(signal_number);
}

void set_activity(Activity next) {
  activity = std::move(next);
}

const Activity& current_activity() {
  return activity;
}

std::string interruption_message(int signal_number) {
  std::string message = std::string("interrupted (") + signal_name(signal_number) + ")";
  if (!activity.description.empty()) message += " while " + activity.description;
  if (!activity.outcome.empty()) message += "; " + activity.outcome;
  return message;
}

void test_pause_point(const std::string& point) {
  if (!pause_requested.load(std::memory_order_relaxed) || point.empty()) return;
  const char* wanted = std::getenv("CKCONV_TEST_PAUSE_AT");
  if (wanted == nullptr || point != wanted || paused_once.exchange(true)) return;
  std::fprintf(stderr, "ckconv: test pause at %s\n", point.c_str());
  std::fflush(stderr);
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (interrupted_signal() == 0 && std::chrono::steady_clock::now() < give_up)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
}

}  // namespace ckconv
