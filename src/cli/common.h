// Options and helpers shared by the subcommands: model selection (--model, --flavor,
// --config, --set, --set-from), execution knobs, logging, the JSON report and progress line.
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "families/model_resolution.h"
#include "families/native_scheme.h"
#include "formats/catalog.h"
#include "model/model_config.h"
#include "pipeline/convert.h"
#include "verify/roundtrip.h"

namespace ckconv::cli {

// The program's version, in --version and every --json report.
inline constexpr const char* kVersion = "0.1.0";

struct ModelOptions {
  std::string model;
  std::string flavor;
  std::string config_file;
  std::vector<std::string> sets;
  std::string set_from;
  std::string hf_config;     // --hf-config (to-hf, from-hf, verify)
  std::string train_config;  // --train-config (to-hf, from-hf, verify)
};

// Blocks built at once by default: the cores, at most 8. The executor adds 6 workers that
// only wait on writes, so block buffers take (threads + 6) x --block-mib (32 MiB on 2
// cores), plus threads x 2 x --block-mib of staging for uncached inputs.
int default_threads();

struct RunOptions {
  int threads = default_threads();
  uint64_t block_mib = 4;  // --block-mib (formerly --buffer-mib)
  std::string json_report;
  bool quiet = false;
  bool verbose = false;
  bool no_sync = false;
};

void add_model_options(CLI::App& app, ModelOptions& options);

// --hf-layout and --hf-expert-layout (families/hf_layout.h): the HF layout to-hf writes.
struct HfLayoutOptions {
  std::string key_layout;
  std::string expert_layout;
  bool drop_mtp = false;  // --drop-mtp (from-hf, verify)
};
void add_hf_layout_options(CLI::App& app, HfLayoutOptions& options);
void add_drop_mtp_option(CLI::App& app, HfLayoutOptions& options);
// The HF layouts of a conversion, set on `config` before its rules are built: on to-hf (and
// verify --native) the options'; on from-hf (and verify --hf) the layouts `input`'s keys use.
// Logs them (unless quiet) and the warnings of the chosen layout (always), and adds both to
// `report`.
void settle_hf_layouts(const RunOptions& run, const HfLayoutOptions& options, Direction direction,
                       const Catalog& input, ModelConfig& config, nlohmann::json& report);
// After the native layout is known: how many of the HF input's MTP layers the native model
// has no place for (dropped by the family's named rule); said on stderr and in `report`.
void report_dropped_mtp(const RunOptions& run, const HfLayoutOptions& options,
                        const ModelConfig& config, const NativeLayout& layout,
                        nlohmann::json& report);
void add_run_options(CLI::App& app, RunOptions& options);
// --native-format dcp|safetensors|torch (torch: a torch.save file), parsed into `format`, which
// keeps its value when the option is absent; any other spelling is a usage error.
void add_native_format_option(CLI::App& app, CheckpointFormat& format, const std::string& help);
// --dtype bf16|f16|f32 (WriteOptions::dtype).
void add_dtype_option(CLI::App& app, std::optional<DType>& dtype);
// The config --model/--flavor/--set/--config name (init): other spellings of family and
// flavor (HF names, model types: families/model_aliases.h) resolved, said unless quiet.
ModelConfig load_config(const RunOptions& run, const ModelOptions& options);
// --dry-run's check of the output side, as the real run would find it: `output` may be
// written (--force, cli exit 6 otherwise; a missing parent is an error) and its file system
// has room for `summary`'s files (kIo naming the bytes needed and free).
void check_output_side(const std::string& output, bool force, const ConversionSummary& summary);
// cli/native_scheme_option.cpp: --native-scheme (`writes`: from-hf, init, verify --hf; else
// to-hf, verify --native, where it overrides detection), and the scheme a command reads or
// writes, logged (unless quiet) and added to `report` as "native_scheme".
void add_native_scheme_option(CLI::App& app, std::string& scheme, bool writes);
NativeLayout read_native_layout(const RunOptions& options, const std::string& forced,
                                const ModelConfig& config, const Catalog& input,
                                nlohmann::json& report);
NativeLayout write_native_layout(const RunOptions& options, const std::string& name,
                                 const ModelConfig& config, nlohmann::json& report);
// cli/model_resolution.cpp: --hf-config, and the model of a conversion or verify resolved
// from the flags, the HF input's config.json or --hf-config (families/model_resolution.h).
void add_hf_config_option(CLI::App& app, ModelOptions& options);
// --train-config FILE: a torchtitan training config naming the model (families/train_config.h).
void add_train_config_option(CLI::App& app, ModelOptions& options);
// A native input (to-hf, verify --native) without --hf-config is detected from its keys and
// shapes (families/native_detection.h) where the flags leave the model open.
ResolvedModel resolve_model(const ModelOptions& options, Direction direction,
                            const std::string& input_path, const MappedCheckpoint& input);
// Plans the conversion of `input` as `model` before any work; a mismatch (kBadInput) also
// says what the input looks like and what would fix the command.
void check_input_plan(Direction direction, const ResolvedModel& model, const FamilyRules& rules,
                      const MappedCheckpoint& input, const WriteOptions& write);
// The FP8 block size of quantization_config.weight_block_size in the config.json that
// resolve_model reads (128 x 128 when it says nothing).
QuantizationOptions hf_quantization(const ModelOptions& options, const std::string& input);
// The --dtype of a conversion whose model a training config named: `given` when the user
// chose one, else the cast of the config's checkpoint.export_dtype (bfloat16, float16; none
// for float32), which torchtitan applies to its own final export. Logged (unless quiet) and
// added to report["resolution"]["train_config"]. to-hf and verify of a native input only.
std::optional<DType> export_dtype_default(const RunOptions& options, const ResolvedModel& model,
                                          std::optional<DType> given, nlohmann::json& report);
// Logs how the model was resolved (unless quiet; warnings always) and adds it to `report`.
void report_model(const RunOptions& options, const ResolvedModel& model, nlohmann::json& report);
WriteOptions write_options(const RunOptions& options);

nlohmann::json summary_json(const ConversionSummary& summary);
// Logs the skipped keys' count per named rule (they are never skipped silently; --verbose
// lists each key). Nothing with --quiet.
void print_skipped(const RunOptions& options, const ConversionReport& report);
// [{"rule": ..., "keys": N}, ...]: the report's skipped keys counted per named rule.
nlohmann::json skipped_by_rule_json(const ConversionReport& report);
// Adds "xxh64" (XXH64, seed 0, hex) to each {"path": name} of `files`, read from `directory`.
void add_file_digests(const std::filesystem::path& directory, nlohmann::json& files);
nlohmann::json verify_json(const VerifyReport& report);
void write_report(const RunOptions& options, const nlohmann::json& report);
// Runs a subcommand's body with the report it fills. A ckconv Error is also written to the
// --json report (error kind, exit code, message, the keys involved, what the report held so
// far) and, with --verbose, its complete key lists are logged; then it propagates.
int run_with_report(const RunOptions& options,
                    const std::function<int(nlohmann::json& report)>& body);
void print_summary(const RunOptions& options, const ConversionSummary& summary, double seconds);
void print_verify(const RunOptions& options, const VerifyReport& report);

// Registration of each subcommand (one file each); the callback runs the command and
// returns its exit code through `exit_code`.
void add_convert_commands(CLI::App& app, int& exit_code);
void add_verify_command(CLI::App& app, int& exit_code);
void add_init_command(CLI::App& app, int& exit_code);
void add_inspect_command(CLI::App& app, int& exit_code);
void add_list_command(CLI::App& app, int& exit_code);

double seconds_since(std::chrono::steady_clock::time_point start);

// Logs (unless quiet) the files of a previous output that a publish replaced or removed.
void print_replaced(const RunOptions& options, const std::vector<std::string>& replaced);

// Logs (unless quiet) what was done about leftovers of interrupted runs.
void print_notes(const RunOptions& options, const std::vector<std::string>& notes);

// The round trip's scratch directory: `scratch_option` (--scratch) when given, else `beside`
// (a directory next to the output or input), else $TMPDIR; fails (exit 5) when none is
// writable with `needed_bytes` free. Logs the leftovers of dead runs it removed there.
std::filesystem::path scratch_directory(const RunOptions& options,
                                        const std::string& scratch_option,
                                        const std::filesystem::path& beside, uint64_t needed_bytes);

}  // namespace ckconv::cli
