#include "cli/common.h"

#include <spdlog/spdlog.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <thread>

#include "core/error.h"
#include "core/file.h"
#include "pipeline/output_directory.h"
#include "pipeline/run_leftovers.h"
#include "verify/scratch_space.h"

namespace ckconv::cli {

int default_threads() {
  const unsigned cores = std::thread::hardware_concurrency();
  return static_cast<int>(std::clamp(cores, 1u, 8u));
}

void add_model_options(CLI::App& app, ModelOptions& options) {
  app.add_option("-m,--model", options.model,
                 "model family: llama3, qwen3, ... (configs/<model>.json); from-hf reads it from "
                 "config.json");
  app.add_option("-f,--flavor", options.flavor,
                 "flavor of the family, e.g. 8B or debugmodel; from-hf reads the fields from "
                 "config.json");
  app.add_option("--config", options.config_file,
                 "use this family JSON instead of the built-in configs/<model>.json");
  app.add_option("--set", options.sets,
                 "override a config field, e.g. --set n_layers=2 (repeatable)");
  app.add_option(
      "--set-from", options.set_from,
      "read overrides from a JSON object (or a torchtitan fixture flavor.json's \"overrides\")");
}

void add_run_options(CLI::App& app, RunOptions& options) {
  app.add_option("--threads", options.threads,
                 "worker threads; default: the cores, at most 8 (output bytes do not depend on it)")
      ->check(CLI::Range(1, 256));
  app.add_option("--block-mib", options.block_mib,
                 "size of each block buffer in MiB; (threads + 6) buffers (output bytes do not "
                 "depend on it)")
      ->check(CLI::Range(1, 4096));
  // The option's name before 2026-12; hidden (no group) and kept so existing scripts work.
  app.add_option("--buffer-mib", options.block_mib, "deprecated name of --block-mib")
      ->check(CLI::Range(1, 4096))
      ->group("");
  app.add_option("--json", options.json_report,
                 "write a machine-readable report to this file ('-' = stdout)");
  app.add_flag("-q,--quiet", options.quiet, "print only errors");
  app.add_flag("-v,--verbose", options.verbose, "print the plan's dropped/created/skipped keys");
  app.add_flag("--no-sync", options.no_sync, "skip fsync of the output (faster; not crash-safe)");
}

void add_native_format_option(CLI::App& app, CheckpointFormat& format, const std::string& help) {
  static const std::map<std::string, CheckpointFormat> kSpellings = {
      {"dcp", CheckpointFormat::kDcp},
      {"safetensors", CheckpointFormat::kSafetensors},
      {"torch", CheckpointFormat::kTorchSave},
  };
  app.add_option_function<std::string>(
         "--native-format", [&format](const std::string& text) { format = kSpellings.at(text); },
         help)
      ->check(CLI::IsMember({"dcp", "safetensors", "torch"}));
}

void add_dtype_option(CLI::App& app, std::optional<DType>& dtype) {
  static const std::map<std::string, DType> kSpellings = {
      {"bf16", DType::kBF16}, {"f16", DType::kF16}, {"f32", DType::kF32}};
  app.add_option_function<std::string>(
         "--dtype", [&dtype](const std::string& text) { dtype = kSpellings.at(text); },
         "cast floating tensors to bf16, f16 or f32 (PyTorch's rounding; tensors torchtitan "
         "keeps in f32, such as expert_bias_E, stay f32); default: keep each tensor's dtype "
         "(dequantized FP8/MXFP4 weights: bf16)")
      ->check(CLI::IsMember({"bf16", "f16", "f32"}));
}

void check_output_side(const std::string& output, bool force, const ConversionSummary& summary) {
  OutputDirectory::check_target(output, force);
  uint64_t needed = 0;
  for (const auto& [name, size] : summary.files) needed += size;
  std::error_code error;
  std::filesystem::path place = std::filesystem::absolute(output).lexically_normal();
  if (!place.has_filename()) place = place.parent_path();
  if (!std::filesystem::is_directory(place, error)) place = place.parent_path();
  const uint64_t room = free_bytes(place);
  if (room < needed)
    fail(ErrorKind::kIo, "not enough space for the output: " + std::to_string(needed) +
                             " bytes needed, " + std::to_string(room) + " free in " +
                             place.string());
}

WriteOptions write_options(const RunOptions& options) {
  WriteOptions write;
  write.threads = options.threads;
  write.block_bytes = options.block_mib << 20;
  write.sync = !options.no_sync;
  if (!options.quiet && ::isatty(STDERR_FILENO)) {
    auto start = std::chrono::steady_clock::now();
    write.progress = [start](uint64_t done, uint64_t total) {
      const double seconds = std::max(1e-9, seconds_since(start));
      std::fprintf(stderr, "\r%6.1f%%  %8.1f MiB of %.1f MiB  %7.1f MiB/s",
                   total ? 100.0 * done / total : 100.0, done / 1048576.0, total / 1048576.0,
                   done / 1048576.0 / seconds);
      if (done == total) std::fprintf(stderr, "\r\033[K");
      std::fflush(stderr);
    };
  }
  return write;
}

void print_replaced(const RunOptions& options, const std::vector<std::string>& replaced) {
  if (options.quiet || replaced.empty()) return;
  std::string names;
  for (const auto& name : replaced) names += (names.empty() ? "" : ", ") + name;
  spdlog::info("replaced {} file(s) of the previous output: {}", replaced.size(), names);
}

void print_notes(const RunOptions& options, const std::vector<std::string>& notes) {
  if (options.quiet) return;
  for (const auto& note : notes) spdlog::warn("{}", note);
}

std::filesystem::path scratch_directory(const RunOptions& options,
                                        const std::string& scratch_option,
                                        const std::filesystem::path& beside,
                                        uint64_t needed_bytes) {
  std::vector<std::filesystem::path> candidates;
  std::error_code error;
  if (!scratch_option.empty()) {
    candidates.push_back(scratch_option);
  } else {
    candidates.push_back(beside);
    candidates.push_back(default_temporary_directory());
  }
  ScratchChoice choice = choose_scratch_directory(candidates, needed_bytes);
  print_notes(options, choice.notes);
  // Scratch of dead runs may also sit beside the input or output (the default place).
  if (!std::filesystem::equivalent(choice.directory, beside, error))
    print_notes(options, remove_dead_leftovers(beside));
  return choice.directory;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

nlohmann::json skipped_by_rule_json(const ConversionReport& report) {
  nlohmann::json rules = nlohmann::json::array();
  for (const auto& [rule, keys] : report.skipped_by_rule)
    rules.push_back({{"rule", rule}, {"keys", keys}});
  return rules;
}

nlohmann::json summary_json(const ConversionSummary& summary) {
  nlohmann::json files = nlohmann::json::array();
  uint64_t total = 0;
  for (const auto& [name, size] : summary.files) {
    files.push_back({{"path", name}, {"bytes", size}});
    total += size;
  }
  return {
      {"direction", summary.direction == Direction::kToHf ? "to_hf" : "from_hf"},
      {"input_format", summary.input_format ? checkpoint_format_name(*summary.input_format) : ""},
      {"output_format", checkpoint_format_name(summary.output_format)},
      {"input_tensors", summary.input_tensors},
      {"output_tensors", summary.output_tensors},
      {"tensor_bytes", summary.output_tensor_bytes},
      {"output_bytes", total},
      {"files", files},
      {"dropped", summary.report.dropped},
      {"created", summary.report.created},
      {"skipped", summary.report.skipped},
      {"skipped_by_rule", skipped_by_rule_json(summary.report)}};
}

nlohmann::json verify_json(const VerifyReport& report) {
  nlohmann::json steps = nlohmann::json::array();
  for (const auto& [step, seconds] : report.step_seconds)
    steps.push_back({{"step", step}, {"seconds", seconds}});
  return {{"passed", report.passed},
          {"differences", report.differences},
          {"notes", report.notes},
          {"step_seconds", steps}};
}

void write_report(const RunOptions& options, const nlohmann::json& report) {
  if (options.json_report.empty()) return;
  const std::string text = report.dump(2) + "\n";
  if (options.json_report == "-") {
    std::fwrite(text.data(), 1, text.size(), stdout);
    return;
  }
  write_small_file(options.json_report, text);
}

void add_file_digests(const std::filesystem::path& directory, nlohmann::json& files) {
  constexpr uint64_t kWindowBytes = uint64_t{64} << 20;
  for (nlohmann::json& file : files) {
    const std::filesystem::path path = directory / file["path"].get<std::string>();
    std::unique_ptr<XXH64_state_t, decltype(&XXH64_freeState)> state(XXH64_createState(),
                                                                     &XXH64_freeState);
    XXH64_reset(state.get(), 0);
    const std::optional<MappedFile> mapped =
        std::filesystem::file_size(path) == 0 ? std::nullopt : std::make_optional<MappedFile>(path);
    for (uint64_t offset = 0; mapped && offset < mapped->size(); offset += kWindowBytes) {
      const uint64_t length = std::min(kWindowBytes, mapped->size() - offset);
      mapped->advise_sequential(offset, length);
      XXH64_update(state.get(), mapped->data() + offset, length);
      mapped->release(offset, length);
    }
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx",
                  static_cast<unsigned long long>(XXH64_digest(state.get())));
    file["xxh64"] = hex;
  }
}

namespace {

std::string error_kind_name(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kUsage:
      return "usage";
    case ErrorKind::kBadInput:
      return "bad_input";
    case ErrorKind::kMismatch:
      return "mismatch";
    case ErrorKind::kIo:
      return "io";
    case ErrorKind::kExists:
      return "exists";
    case ErrorKind::kInternal:
      return "internal";
  }
  return "internal";
}

}  // namespace

int run_with_report(const RunOptions& options,
                    const std::function<int(nlohmann::json& report)>& body) {
  nlohmann::json report = nlohmann::json::object();
  try {
    return body(report);
  } catch (const Error& error) {
    if (options.verbose)
      for (const auto& [category, keys] : error.keys()) {
        spdlog::info("{} ({}):", category, keys.size());
        for (const std::string& key : keys) spdlog::info("  {}", key);
      }
    report["ok"] = false;
    report["error"] = {{"kind", error_kind_name(error.kind())},
                       {"exit_code", error.exit_code()},
                       {"message", error.what()},
                       {"keys", error.keys()}};
    try {
      write_report(options, report);
    } catch (const Error&) {
      // The report of a failure is best effort: the error itself is what the user must see.
    }
    throw;
  }
}

void print_summary(const RunOptions& options, const ConversionSummary& summary, double seconds) {
  if (options.quiet) return;
  uint64_t total = 0;
  for (const auto& [name, size] : summary.files) total += size;
  spdlog::info(
      "{} -> {}: {} tensors in, {} tensors out, {} files, {:.1f} MiB in {:.2f} s ({:.1f} MiB/s)",
      summary.input_format ? checkpoint_format_name(*summary.input_format) : "init",
      checkpoint_format_name(summary.output_format), summary.input_tensors, summary.output_tensors,
      summary.files.size(), total / 1048576.0, seconds,
      seconds > 0 ? total / 1048576.0 / seconds : 0.0);
  auto list = [&](const char* label, const std::vector<std::string>& items) {
    if (items.empty()) return;
    spdlog::info("{} {} key(s){}", label, items.size(),
                 options.verbose ? ":" : " (--verbose lists them)");
    if (options.verbose)
      for (const auto& item : items) spdlog::info("  {}", item);
  };
  list("dropped", summary.report.dropped);
  list("created", summary.report.created);
  print_skipped(options, summary.report);
}

void print_skipped(const RunOptions& options, const ConversionReport& report) {
  if (options.quiet || report.skipped.empty()) return;
  std::string rules;
  for (const auto& [rule, keys] : report.skipped_by_rule)
    rules += (rules.empty() ? "" : ", ") + rule + " " + std::to_string(keys);
  spdlog::info("skipped {} key(s), not converted: {}{}", report.skipped.size(), rules,
               options.verbose ? ":" : " (--verbose lists them)");
  if (options.verbose)
    for (const auto& item : report.skipped) spdlog::info("  {}", item);
}

void print_verify(const RunOptions& options, const VerifyReport& report) {
  for (const auto& difference : report.differences)
    spdlog::error("ckconv: error: verify: {}", difference);
  if (options.quiet) return;
  for (const auto& note : report.notes) spdlog::info("verify: {}", note);
  if (options.verbose)
    for (const auto& [step, seconds] : report.step_seconds)
      spdlog::info("verify: {}: {:.2f} s", step, seconds);
  if (report.passed)
    spdlog::info("verify: round trip passed (tensors bit-equal, files byte-equal)");
}

}  // namespace ckconv::cli
