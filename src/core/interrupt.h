// Prompt, clean interruption. SIGINT, SIGTERM and SIGHUP only set a flag (the handler does
// nothing else: no allocation, no I/O); long loops call throw_if_interrupted() between
// units of work, so the exception unwinds through the owners of staging and scratch
// directories, which remove them. main() reports the signal and exits 128 + its number. A
// second signal ends the process at once (_exit), leaving its staging to the next run.
#pragma once

#include <stdexcept>
#include <string>

namespace ckconv {

// Thrown by throw_if_interrupted(); carries the signal that asked to stop.
class Interrupted : public std::runtime_error {
 public:
  explicit Interrupted(int signal_number);
  int signal_number() const { return signal_number_; }
  int exit_code() const { return 128 + signal_number_; }

 private:
  int signal_number_;
};

// Installs the handlers (once, from main, before any work), except for a signal that is
// already ignored (nohup's SIGHUP, SIGINT of a background job in a script).
void install_interrupt_handlers();

// The signal received so far, or 0.
int interrupted_signal();

// Throws Interrupted when a signal was received. Cheap (one atomic load): call it once per
// block of work. Also the place where the test-only pause point of the current activity is
// honoured (see test_pause_point).
void throw_if_interrupted();

// What the process is doing, for the message printed on interruption ("writing OUT").
// `key` names the activity for CKCONV_TEST_PAUSE_AT; `outcome` says what an interruption
// leaves behind ("no output was changed").
struct Activity {
  std::string key;
  std::string description;
  std::string outcome = "no output was changed";
};
void set_activity(Activity activity);
const Activity& current_activity();

// "interrupted (SIGINT) while writing OUT; no output was changed"
std::string interruption_message(int signal_number);

// TEST ONLY. When the environment variable CKCONV_TEST_PAUSE_AT equals `point`, prints
// "ckconv: test pause at POINT" on stderr and sleeps until a signal arrives (at most 60 s),
// once per process, so a test can signal or kill the process at a known step. The activity
// keys ("read", "write", "verify") are pause points checked by throw_if_interrupted();
// publishing names each of its steps ("publish-step-K"). Never set it outside tests.
void test_pause_point(const std::string& point);

}  // namespace ckconv
