// `ckconv init`: write a deterministic random-init native checkpoint of any flavor.
#include <spdlog/spdlog.h>

#include <memory>

#include "cli/common.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "pipeline/init_checkpoint.h"
#include "pipeline/output_directory.h"
#include "pipeline/publish.h"

namespace ckconv::cli {
namespace {

struct InitArgs {
  ModelOptions model;
  RunOptions run;
  std::string output;
  std::string dtype = "f32";
  CheckpointFormat native_format = CheckpointFormat::kSafetensors;
  uint64_t seed = 0;
  std::string native_scheme;
  bool force = false;
  bool dry_run = false;
};

int run_init(const InitArgs& args) {
  const auto start = std::chrono::steady_clock::now();
  const ModelConfig config = load_config(args.run, args.model);
  nlohmann::json scheme_report;
  const NativeLayout layout =
      write_native_layout(args.run, args.native_scheme, config, scheme_report);
  const FamilyRules rules = build_native_rules(config, layout);
  InitOptions init;
  init.seed = args.seed;
  init.dtype = args.dtype == "bf16"  ? DType::kBF16
               : args.dtype == "f16" ? DType::kF16
                                     : DType::kF32;
  WriteOptions write = write_options(args.run);
  write.native_format = args.native_format;
  if (args.dry_run) {
    const ConversionSummary summary = write_initial_checkpoint(rules, init, {}, write, true);
    check_output_side(args.output, args.force, summary);
    if (!args.run.quiet) {
      spdlog::info("dry run: {}/{} would write:", config.family(), config.flavor());
      for (const auto& [name, size] : summary.files) spdlog::info("  {:>14} bytes  {}", size, name);
    }
    nlohmann::json report = {{"command", "init"},
                             {"version", kVersion},
                             {"ok", true},
                             {"dry_run", true},
                             {"model", config.family()},
                             {"flavor", config.flavor()},
                             {"output", args.output},
                             {"conversion", summary_json(summary)}};
    report.update(scheme_report);
    write_report(args.run, report);
    return 0;
  }
  OutputDirectory output(args.output, args.force);
  print_notes(args.run, output.cleanup_notes());
  write.dcp_data_file_name = dcp_data_file_name_for(output.target());
  set_activity({"write", "writing " + output.target().string()});
  ConversionSummary summary = write_initial_checkpoint(rules, init, output.staging(), write);
  set_activity({"publish", "publishing " + output.target().string()});
  const std::vector<std::string> replaced = output.publish();
  set_activity({"done", "finishing", output.target().string() + " was written completely"});
  print_replaced(args.run, replaced);
  const double seconds = seconds_since(start);
  print_summary(args.run, summary, seconds);
  if (!args.run.quiet) spdlog::info("wrote {}", output.target().string());
  nlohmann::json report = {{"command", "init"},
                           {"version", kVersion},
                           {"ok", true},
                           {"model", config.family()},
                           {"flavor", config.flavor()},
                           {"output", args.output},
                           {"seed", args.seed},
                           {"dtype", args.dtype},
                           {"conversion", summary_json(summary)},
                           {"seconds", seconds},
                           {"replaced", replaced}};
  report.update(scheme_report);
  write_report(args.run, report);
  return 0;
}

}  // namespace

void add_init_command(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<InitArgs>();
  CLI::App* command =
      app.add_subcommand("init", "write a deterministic random-init native checkpoint of a flavor");
  command->option_defaults()->always_capture_default();
  command->footer(
      "\nExamples:\n"
      "  ckconv init tiny -m llama3 -f debugmodel --set n_layers=2\n"
      "  ckconv init qwen -m Qwen3-0.6B --dry-run          (HF names and model types work too)\n"
      "  ckconv init big.dcp -m qwen3 -f 0.6B --native-format dcp --dtype bf16");
  command->add_option("output,-o,--output", args->output, "output directory")->required();
  add_model_options(*command, args->model);
  add_run_options(*command, args->run);
  command->add_option("--seed", args->seed,
                      "random seed (values depend only on seed, key and index)");
  command->add_option("--dtype", args->dtype, "f32, bf16 or f16 (expert_bias_E stays f32)")
      ->check(CLI::IsMember({"f32", "bf16", "f16"}));
  add_native_format_option(*command, args->native_format, "safetensors (default), dcp or torch");
  add_native_scheme_option(*command, args->native_scheme, true);
  command->add_flag("--dry-run", args->dry_run,
                    "check the output side (exists, parent, space) and print the files it would "
                    "write; write nothing");
  command->add_flag(
      "--force", args->force,
      "replace the checkpoint files already in the output directory (other files are kept)");
  command->callback([args, &exit_code]() {
    exit_code = run_with_report(args->run, [&](nlohmann::json&) { return run_init(*args); });
  });
}

}  // namespace ckconv::cli
