// `ckconv to-hf` and `ckconv from-hf`.
#include <spdlog/spdlog.h>

#include <memory>

#include "cli/common.h"
#include "cli/part_command.h"
#include "cli/size_option.h"
#include "core/error.h"
#include "core/file.h"
#include "core/interrupt.h"
#include "families/hf_layout.h"
#include "formats/checkpoint_reader.h"
#include "formats/safetensors/safetensors_writer.h"
#include "formats/training_state.h"
#include "pipeline/output_directory.h"
#include "pipeline/publish.h"
#include "verify/scratch_removal.h"
#include "verify/scratch_space.h"

namespace ckconv::cli {
namespace {

struct ConvertArgs {
  ModelOptions model;
  HfLayoutOptions layout;
  RunOptions run;
  std::string input;
  std::string output;
  std::string max_shard_size;
  std::string hf_assets;
  CheckpointFormat native_format = CheckpointFormat::kDcp;
  std::optional<DType> dtype;
  std::string scratch;
  std::string native_scheme;
  bool verify = false;
  bool dry_run = false;
  bool force = false;
  std::string part;  // --part (cli/part_command.h)
};

// The scratch directory of --verify-roundtrip, its room checked before any work. The output's
// staging counts too when it shares the file system.
std::filesystem::path round_trip_scratch(Direction direction, const ModelConfig& config,
                                         const FamilyRules& rules, const MappedCheckpoint& input,
                                         const WriteOptions& write, const ConvertArgs& args,
                                         const OutputDirectory& output) {
  uint64_t output_bytes = 0;
  for (const auto& [name, size] :
       write_conversion(direction, config, rules, input, {}, write, true).files)
    output_bytes += size;
  const std::filesystem::path beside = output.target().parent_path();
  uint64_t needed = round_trip_scratch_bytes(
      output_bytes, true, round_trip_starts_from_output(direction, rules, input, write));
  if (same_file_system(args.scratch.empty() ? beside : std::filesystem::path(args.scratch),
                       output.staging()))
    needed += output_bytes;
  return scratch_directory(args.run, args.scratch, beside, needed);
}

// The files to-hf writes beside config.json: --hf-assets's, and a generation_config.json from
// the token ids of --hf-config (or of the assets folder's config.json) when they hold none.
// Says (unless quiet) what is included; `report` gets the same.
std::vector<CompanionFile> hf_companions(const ConvertArgs& args, nlohmann::json& report) {
  std::vector<CompanionFile> files;
  std::filesystem::path ids_from = args.model.hf_config;
  if (!args.hf_assets.empty()) {
    files = read_hf_assets(args.hf_assets);
    if (ids_from.empty() &&
        std::filesystem::exists(std::filesystem::path(args.hf_assets) / "config.json"))
      ids_from = std::filesystem::path(args.hf_assets) / "config.json";
  }
  const bool has_generation =
      std::any_of(files.begin(), files.end(),
                  [](const CompanionFile& file) { return file.name == "generation_config.json"; });
  if (!has_generation && !ids_from.empty()) {
    nlohmann::json config;
    try {
      config = nlohmann::json::parse(read_small_file(ids_from, 16 << 20));
    } catch (const nlohmann::json::exception& error) {
      fail_input(ids_from.string() + ": invalid JSON: " + error.what());
    }
    if (auto generation = generation_config_from(config)) files.push_back(*generation);
  }
  nlohmann::json names = nlohmann::json::array();
  for (const CompanionFile& file : files) names.push_back(file.name);
  report = {{"files", names}, {"tokenizer_included", has_tokenizer(files)}};
  if (!args.run.quiet) {
    if (!has_tokenizer(files))
      spdlog::info(
          "no tokenizer included in the HF output (--hf-assets DIR copies one from a "
          "release or tokenizer folder)");
    if (files.empty())
      spdlog::info(
          "no generation_config.json written: no bos/eos token ids known (--hf-config "
          "or --hf-assets)");
  }
  return files;
}

// to-hf with --train-config: its export_dtype is the default --dtype, and the hf_assets_path
// it names is pointed out (relative to where training ran, so never used by itself).
void apply_train_config(const ConvertArgs& args, const ResolvedModel& model, WriteOptions& write,
                        nlohmann::json& report) {
  write.dtype = export_dtype_default(args.run, model, args.dtype, report);
  if (args.hf_assets.empty() && model.train_config && !model.train_config->hf_assets_path.empty() &&
      !args.run.quiet)
    spdlog::info("{} names hf_assets_path {} (--hf-assets DIR copies its tokenizer files)",
                 model.train_config->path.string(), model.train_config->hf_assets_path);
}

int run_convert(Direction direction, const ConvertArgs& args, nlohmann::json& report) {
  const auto start = std::chrono::steady_clock::now();
  WriteOptions write = write_options(args.run);
  write.native_format = args.native_format;
  write.dtype = args.dtype;
  if (direction == Direction::kFromHf) write.quantization = hf_quantization(args.model, args.input);
  if (!args.max_shard_size.empty()) write.max_shard_size_bytes = parse_size(args.max_shard_size);
  nlohmann::json assets_report;
  if (direction == Direction::kToHf) {
    if (!write.max_shard_size_bytes) write.max_shard_size_bytes = kDefaultMaxShardSizeBytes;
    write.hf_companions = hf_companions(args, assets_report);
  }

  set_activity({"read", "reading " + args.input});
  MappedCheckpoint input(read_checkpoint(args.input));
  throw_if_interrupted();
  require_model_tensors(input.catalog());
  report = {{"command", direction == Direction::kToHf ? "to-hf" : "from-hf"},
            {"version", kVersion},
            {"input", args.input},
            {"output", args.output}};
  ResolvedModel model = resolve_model(args.model, direction, args.input, input);
  nlohmann::json layout_report;
  settle_hf_layouts(args.run, args.layout, direction, input.catalog(), model.config, layout_report);
  const ModelConfig& config = model.config;
  report["model"] = config.family();
  report["flavor"] = config.flavor();
  report_model(args.run, model, report);
  report.update(layout_report);
  if (direction == Direction::kToHf) {
    report["hf_assets"] = assets_report;
    apply_train_config(args, model, write, report);
  }
  const NativeLayout layout =
      direction == Direction::kToHf
          ? read_native_layout(args.run, args.native_scheme, config, input.catalog(), report)
          : write_native_layout(args.run, args.native_scheme, config, report);
  report_dropped_mtp(args.run, args.layout, config, layout, report);
  const FamilyRules rules = build_native_rules(config, layout);
  check_input_plan(direction, model, rules, input, write);
  write.dcp_data_file_name = dcp_data_file_name_for(args.output);
  if (!args.part.empty()) {
    check_output_does_not_contain(args.output, args.input);
    return run_convert_part(direction, config, rules, input, write, args.run,
                            {args.part, args.output, args.force, args.dry_run}, report);
  }
  if (args.dry_run) {
    ConversionSummary summary = write_conversion(direction, config, rules, input, {}, write, true);
    check_output_does_not_contain(args.output, args.input);
    check_output_side(args.output, args.force, summary);
    report["dry_run"] = true;
    report["ok"] = true;
    report["conversion"] = summary_json(summary);
    if (!args.run.quiet) {
      spdlog::info("dry run: the input matches {}/{}; would write:", config.family(),
                   config.flavor());
      for (const auto& [name, size] : summary.files) spdlog::info("  {:>14} bytes  {}", size, name);
    }
    write_report(args.run, report);
    return 0;
  }

  check_output_does_not_contain(args.output, args.input);
  // Tokenizer files are not ckconv's kind of file (pipeline/publish.h): replacing one that is
  // already in the output takes --force, as replacing a checkpoint does.
  for (const CompanionFile& file : write.hf_companions)
    if (!args.force && std::filesystem::exists(std::filesystem::path(args.output) / file.name))
      fail(ErrorKind::kExists, "output " + args.output + " already holds " + file.name +
                                   " (use --force to replace it; other files in it are kept)");
  OutputDirectory output(args.output, args.force);
  print_notes(args.run, output.cleanup_notes());
  // Chosen again once the constructor has finished a dead run's publish into the output.
  write.dcp_data_file_name = dcp_data_file_name_for(output.target());
  std::filesystem::path scratch;
  if (args.verify)
    scratch = round_trip_scratch(direction, config, rules, input, write, args, output);
  std::vector<uint64_t> block_digests;  // lets --verify-roundtrip skip reading the output back
  if (args.verify) write.block_digests = &block_digests;
  set_activity({"write", "writing " + output.target().string()});
  ConversionSummary summary =
      write_conversion(direction, config, rules, input, output.staging(), write);
  const double convert_seconds = seconds_since(start);
  report["conversion"] = summary_json(summary);
  report["seconds"] = convert_seconds;
  print_summary(args.run, summary, convert_seconds);
  int code = 0;
  VerifyReport verify;  // holds the scratch until the output is published
  if (args.verify) {
    const auto verify_start = std::chrono::steady_clock::now();
    set_activity({"verify", "verifying the round trip of " + output.target().string()});
    verify = verify_roundtrip(direction, config, rules, input, scratch / output.target().filename(),
                              write, output.staging());
    report["verify"] = verify_json(verify);
    report["verify"]["seconds"] = seconds_since(verify_start);
    print_verify(args.run, verify);
    if (!verify.passed) code = static_cast<int>(ErrorKind::kMismatch);
  }
  if (code == 0) {
    set_activity({"publish", "publishing " + output.target().string()});
    const std::vector<std::string> replaced = output.publish();
    set_activity({"done", "finishing", output.target().string() + " was written completely"});
    report["replaced"] = replaced;
    // The digests read the whole output back: only worth it when the report is written.
    if (!args.run.json_report.empty())
      add_file_digests(output.target(), report["conversion"]["files"]);
    print_replaced(args.run, replaced);
    if (!args.run.quiet) spdlog::info("wrote {}", output.target().string());
  } else {
    spdlog::error("ckconv: error: round trip failed: the output was not written");
  }
  report["ok"] = code == 0;
  write_report(args.run, report);
  remove_in_background(release_scratch(verify));
  return code;
}

void add_convert_command(CLI::App& app, int& exit_code, Direction direction) {
  const bool to_hf = direction == Direction::kToHf;
  auto args = std::make_shared<ConvertArgs>();
  CLI::App* command = app.add_subcommand(
      to_hf ? "to-hf" : "from-hf",
      to_hf ? "convert a native checkpoint (DCP, torch.save or safetensors) to HuggingFace "
              "safetensors"
            : "convert a HuggingFace safetensors checkpoint to a native torchtitan checkpoint");
  command->option_defaults()->always_capture_default();
  command->footer(
      to_hf ? "\nExamples:\n"
              "  ckconv to-hf outputs/checkpoint/step-1000 hf_out        (model detected)\n"
              "  ckconv to-hf step-1000 hf_out --flavor 8B               (family detected)\n"
              "  ckconv to-hf step-1000 hf_out --hf-config base/config.json --max-shard-size 5GB"
            : "\nExamples:\n"
              "  ckconv from-hf Llama-3.1-8B/ native_out                 (model from config.json)\n"
              "  ckconv from-hf hf_dir native_out --native-format safetensors\n"
              "  ckconv from-hf hf_dir native_out --dry-run --json plan.json");
  command->add_option("input,-i,--input", args->input, "input checkpoint (file or directory)")
      ->required();
  command
      ->add_option("output,-o,--output", args->output,
                   "output directory (new, empty, or holding files to keep: see --force)")
      ->required();
  add_model_options(*command, args->model);
  add_hf_config_option(*command, args->model);
  add_train_config_option(*command, args->model);
  add_run_options(*command, args->run);
  add_dtype_option(*command, args->dtype);
  CLI::Option* verify =
      command->add_flag("--verify-roundtrip", args->verify,
                        "also run the round trip on the output and publish it only if it is exact");
  command->add_flag("--dry-run", args->dry_run,
                    "check the input against the model and the output side (exists, parent, "
                    "space) and print the plan; write nothing");
  command->add_flag(
      "--force", args->force,
      "replace the checkpoint files already in the output directory (other files are kept)");
  command
      ->add_option(
          "--scratch", args->scratch,
          "directory for --verify-roundtrip's intermediate checkpoints (default: beside the "
          "output, else $TMPDIR)")
      ->needs(verify);
  add_native_scheme_option(*command, args->native_scheme, !to_hf);
  if (to_hf) add_hf_layout_options(*command, args->layout);
  if (to_hf)
    command->add_option("--hf-assets", args->hf_assets,
                        "copy the tokenizer files, generation_config.json, chat template and "
                        "special-tokens map of this release or tokenizer folder into the output");
  add_part_option(*command, args->part, verify);
  if (to_hf)
    command->add_option(
        "--max-shard-size", args->max_shard_size,
        "split into model-0000i-of-0000N.safetensors shards of at most this size (default "
        "5GB, as huggingface_hub; e.g. 5G, 5GB, 5GiB)");
  else
    add_drop_mtp_option(*command, args->layout);
  if (!to_hf)
    add_native_format_option(*command, args->native_format,
                             "dcp (torchtitan's format, default), safetensors or torch");
  command->callback([args, direction, &exit_code]() {
    exit_code = run_with_report(
        args->run, [&](nlohmann::json& report) { return run_convert(direction, *args, report); });
  });
}

}  // namespace

void add_convert_commands(CLI::App& app, int& exit_code) {
  add_convert_command(app, exit_code, Direction::kToHf);
  add_convert_command(app, exit_code, Direction::kFromHf);
}

}  // namespace ckconv::cli
