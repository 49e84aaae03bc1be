// `ckconv verify`: the round trip from a native or an HF checkpoint, without keeping outputs.
#include <spdlog/spdlog.h>

#include <memory>

#include "cli/common.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "families/hf_layout.h"
#include "formats/checkpoint_reader.h"
#include "formats/training_state.h"
#include "verify/scratch_removal.h"
#include "verify/scratch_space.h"

namespace ckconv::cli {
namespace {

struct VerifyArgs {
  ModelOptions model;
  HfLayoutOptions layout;
  RunOptions run;
  std::string native;
  std::string hf;
  std::optional<DType> dtype;
  std::string path;  // positional: native or HF, told apart by its keys
  std::string scratch;
  std::string native_scheme;
};

int run_verify(const VerifyArgs& args, nlohmann::json& json) {
  if ((args.native.empty() ? 0 : 1) + (args.hf.empty() ? 0 : 1) + (args.path.empty() ? 0 : 1) != 1)
    fail(ErrorKind::kUsage,
         "verify needs exactly one checkpoint: PATH, --native CKPT or --hf HF_DIR");
  const auto start = std::chrono::steady_clock::now();
  const std::string path = !args.path.empty()     ? args.path
                           : !args.native.empty() ? args.native
                                                  : args.hf;
  WriteOptions write = write_options(args.run);
  write.dtype = args.dtype;
  set_activity({"read", "reading " + path});
  MappedCheckpoint input(read_checkpoint(path));
  throw_if_interrupted();
  require_model_tensors(input.catalog());
  const bool from_native =
      !args.native.empty() || (!args.path.empty() && !looks_like_hf(input.catalog()));
  const Direction direction = from_native ? Direction::kToHf : Direction::kFromHf;
  if (!from_native && (!args.layout.key_layout.empty() || !args.layout.expert_layout.empty()))
    fail(ErrorKind::kUsage,
         "--hf-layout and --hf-expert-layout go with --native (or a native PATH); an HF "
         "input's layout is read from its keys");
  ResolvedModel model = resolve_model(args.model, direction, path, input);
  nlohmann::json layout_report;
  settle_hf_layouts(args.run, args.layout, direction, input.catalog(), model.config, layout_report);
  const ModelConfig& config = model.config;
  json = {
      {"command", "verify"},       {"version", kVersion}, {"model", config.family()},
      {"flavor", config.flavor()}, {"input", path},       {"start", from_native ? "native" : "hf"}};
  report_model(args.run, model, json);
  json.update(layout_report);
  // A native input's round trip checks what to-hf writes, export_dtype's cast included.
  if (from_native) write.dtype = export_dtype_default(args.run, model, args.dtype, json);
  if (!from_native) write.quantization = hf_quantization(args.model, path);
  // From a native checkpoint the round trip writes the input's own scheme, so it can be exact.
  const NativeLayout layout =
      from_native ? read_native_layout(args.run, args.native_scheme, config, input.catalog(), json)
                  : write_native_layout(args.run, args.native_scheme, config, json);
  report_dropped_mtp(args.run, args.layout, config, layout, json);
  const FamilyRules rules = build_native_rules(config, layout);
  check_input_plan(direction, model, rules, input, write);
  if (from_native) write.native_format = input.catalog().format;
  // Room for the intermediates is checked before any work; by default they go beside the
  // input when that is writable (never into a read-only input's folder), else to $TMPDIR.
  uint64_t first_bytes = 0;
  const ConversionSummary planned =
      write_conversion(direction, config, rules, input, {}, write, true);
  for (const auto& [name, size] : planned.files) first_bytes += size;
  print_skipped(args.run, planned.report);
  json["skipped"] = planned.report.skipped;
  json["skipped_by_rule"] = skipped_by_rule_json(planned.report);
  const std::filesystem::path input_path = std::filesystem::absolute(path).lexically_normal();
  const std::filesystem::path named =
      input_path.has_filename() ? input_path : input_path.parent_path();
  const std::filesystem::path scratch = scratch_directory(
      args.run, args.scratch, named.parent_path(),
      round_trip_scratch_bytes(first_bytes, false,
                               round_trip_starts_from_output(direction, rules, input, write)));
  set_activity({"verify", "verifying " + path});
  VerifyReport report =
      verify_roundtrip(direction, config, rules, input, scratch / named.filename(), write);
  print_verify(args.run, report);
  json["verify"] = verify_json(report);
  json["seconds"] = seconds_since(start);
  json["ok"] = report.passed;
  write_report(args.run, json);
  remove_in_background(release_scratch(report));
  return report.passed ? 0 : static_cast<int>(ErrorKind::kMismatch);
}

}  // namespace

void add_verify_command(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<VerifyArgs>();
  CLI::App* command = app.add_subcommand("verify",
                                         "round-trip a checkpoint (to_hf -> from_hf -> to_hf, or "
                                         "from_hf -> to_hf -> from_hf) and compare");
  command->option_defaults()->always_capture_default();
  command->footer(
      "\nExamples:\n"
      "  ckconv verify outputs/checkpoint/step-1000              (native, model detected)\n"
      "  ckconv verify Llama-3.1-8B/                             (HF, model from config.json)\n"
      "  ckconv verify --native step-1000 --flavor 8B --scratch /big/tmp");
  command->add_option("path", args->path, "checkpoint to verify (native or HF, told by its keys)");
  add_model_options(*command, args->model);
  add_hf_config_option(*command, args->model);
  add_train_config_option(*command, args->model);
  add_run_options(*command, args->run);
  add_dtype_option(*command, args->dtype);
  add_hf_layout_options(*command, args->layout);
  add_drop_mtp_option(*command, args->layout);
  auto* native = command->add_option("--native", args->native, "start from this native checkpoint");
  auto* hf = command->add_option("--hf", args->hf, "start from this HF checkpoint");
  native->excludes(hf);
  add_native_scheme_option(*command, args->native_scheme, false);
  command->add_option("--scratch", args->scratch,
                      "directory for the intermediate checkpoints (default: beside the input when "
                      "writable with room, else $TMPDIR)");
  command->callback([args, &exit_code]() {
    exit_code =
        run_with_report(args->run, [&](nlohmann::json& json) { return run_verify(*args, json); });
  });
}

}  // namespace ckconv::cli
