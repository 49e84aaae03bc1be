// ckconv: convert torchtitan native checkpoints to HuggingFace safetensors and back.
// Wires the subcommands; each lives in its own file under cli/.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <new>

#include "cli/common.h"
#include "cli/part_command.h"
#include "core/error.h"
#include "core/interrupt.h"

namespace {

// Exit status 128 + signal, as a shell reports a process killed by it (README "Exit codes").
int report_interruption(int signal_number) {
  std::fprintf(stderr, "ckconv: %s\n", ckconv::interruption_message(signal_number).c_str());
  return 128 + signal_number;
}

}  // namespace

int main(int argc, char** argv) {
  // Past a file-size limit (ulimit -f) a write then fails with EFBIG, reported as an I/O error
  // with the staging directory removed, instead of SIGXFSZ killing the process mid-write.
  std::signal(SIGXFSZ, SIG_IGN);
  ckconv::install_interrupt_handlers();
  auto logger = spdlog::stderr_color_mt("ckconv");
  logger->set_pattern("%v");
  spdlog::set_default_logger(logger);

  CLI::App app{"ckconv: torchtitan native <-> HuggingFace safetensors checkpoint converter"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("ckconv ") + ckconv::cli::kVersion);
  int exit_code = 0;
  ckconv::cli::add_convert_commands(app, exit_code);
  ckconv::cli::add_verify_command(app, exit_code);
  ckconv::cli::add_init_command(app, exit_code);
  ckconv::cli::add_inspect_command(app, exit_code);
  ckconv::cli::add_list_command(app, exit_code);
  ckconv::cli::add_publish_command(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // CLI11's own messages get the prefix of every other error line.
    std::fprintf(stderr, "ckconv: error: %s\nRun with --help for more information.\n", e.what());
    return static_cast<int>(ckconv::ErrorKind::kUsage);
  } catch (const ckconv::Interrupted& e) {
    return report_interruption(e.signal_number());
  } catch (const ckconv::Error& e) {
    // An error while stopping (a worker's read cut short, say) is the interruption's doing.
    if (ckconv::interrupted_signal() != 0) return report_interruption(ckconv::interrupted_signal());
    std::fprintf(stderr, "ckconv: error: %s\n", e.what());
    return e.exit_code();
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "ckconv: error: out of memory\n");
    return static_cast<int>(ckconv::ErrorKind::kIo);
  } catch (const std::filesystem::filesystem_error& e) {
    std::fprintf(stderr, "ckconv: error: %s\n", e.what());
    return static_cast<int>(ckconv::ErrorKind::kIo);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ckconv: error: internal error: %s\n", e.what());
    return static_cast<int>(ckconv::ErrorKind::kInternal);
  }
  // A signal after the last check: the work is done, but the user asked to stop.
  if (ckconv::interrupted_signal() != 0) return report_interruption(ckconv::interrupted_signal());
  return exit_code;
}
