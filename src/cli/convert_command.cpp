// `ckconv to-hf` and `ckconv from-hf`.
#include <spdlog/spdlog.h>

#include <memory>

#include "cli/common.h"
#include "cli/part_command.h"
#include "cli/size_option.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "formats/checkpoint_reader.h"
#include "formats/safetensors/safetensors_writer.h"
#include "pipeline/output_directory.h"
#include "verify/scratch_removal.h"
#include "verify/scratch_space.h"

namespace ckconv::cli {
namespace {

struct ConvertArgs {
  ModelOptions model;
  RunOptions run;
  std::string input;
  std::string output;
  std::string max_shard_size;
  CheckpointFormat native_format = CheckpointFormat::kDcp;
  std::string scratch;
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
  uint64_t needed = round_trip_scratch_bytes(output_bytes, true);
  if (same_file_system(args.scratch.empty() ? beside : std::filesystem::path(args.scratch),
                       output.staging()))
    needed += output_bytes;
  return scratch_directory(args.run, args.scratch, beside, needed);
}

int run_convert(Direction direction, const ConvertArgs& args) {
  const auto start = std::chrono::steady_clock::now();
  const ResolvedModel model = resolve_model(args.model, direction, args.input);
  const ModelConfig& config = model.config;
  const FamilyRules rules = build_family_rules(config);
  WriteOptions write = write_options(args.run);
  write.native_format = args.native_format;
  if (!args.max_shard_size.empty()) write.max_shard_size_bytes = parse_size(args.max_shard_size);

  set_activity({"read", "reading " + args.input});
  MappedCheckpoint input(read_checkpoint(args.input));
  throw_if_interrupted();
  nlohmann::json report = {{"command", direction == Direction::kToHf ? "to-hf" : "from-hf"},
                           {"model", config.family()},
                           {"flavor", config.flavor()},
                           {"input", args.input},
                           {"output", args.output}};
  report_model(args.run, model, report);
  if (!args.part.empty()) {
    check_output_does_not_contain(args.output, args.input);
    return run_convert_part(direction, config, rules, input, write, args.run,
                            {args.part, args.output, args.force, args.dry_run}, report);
  }
  if (args.dry_run) {
    ConversionSummary summary = write_conversion(direction, config, rules, input, {}, write, true);
    report["dry_run"] = true;
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
  OutputDirectory output(args.output, args.force);
  print_notes(args.run, output.cleanup_notes());
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
    print_replaced(args.run, replaced);
    if (!args.run.quiet) spdlog::info("wrote {}", output.target().string());
  } else {
    spdlog::error("round trip failed: the output was not written");
  }
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
  add_model_options(*command, args->model);
  add_hf_config_option(*command, args->model);
  add_run_options(*command, args->run);
  command->add_option("-i,--input", args->input, "input checkpoint (file or directory)")
      ->required();
  command
      ->add_option("-o,--output", args->output,
                   "output directory (new, empty, or holding files to keep: see --force)")
      ->required();
  CLI::Option* verify =
      command->add_flag("--verify-roundtrip", args->verify,
                        "also run the round trip on the output and publish it only if it is exact");
  command->add_flag("--dry-run", args->dry_run,
                    "check the input against the flavor and print the plan; write nothing");
  command->add_flag(
      "--force", args->force,
      "replace the checkpoint files already in the output directory (other files are kept)");
  command
      ->add_option(
          "--scratch", args->scratch,
          "directory for --verify-roundtrip's intermediate checkpoints (default: beside the "
          "output, else $TMPDIR)")
      ->needs(verify);
  add_part_option(*command, args->part, verify);
  if (to_hf)
    command->add_option(
        "--max-shard-size", args->max_shard_size,
        "split into model-0000i-of-0000N.safetensors shards of at most this size (e.g. 5GB)");
  else
    add_native_format_option(*command, args->native_format,
                             "dcp (torchtitan's format, default), safetensors or torch");
  command->callback([args, direction, &exit_code]() { exit_code = run_convert(direction, *args); });
}

}  // namespace

void add_convert_commands(CLI::App& app, int& exit_code) {
  add_convert_command(app, exit_code, Direction::kToHf);
  add_convert_command(app, exit_code, Direction::kFromHf);
}

}  // namespace ckconv::cli
