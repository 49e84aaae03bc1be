// `ckconv verify`: the round trip from a native or an HF checkpoint, without keeping outputs.
#include <spdlog/spdlog.h>

#include <memory>

#include "cli/common.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "formats/checkpoint_reader.h"
#include "verify/scratch_removal.h"
#include "verify/scratch_space.h"

namespace ckconv::cli {
namespace {

struct VerifyArgs {
  ModelOptions model;
  RunOptions run;
  std::string native;
  std::string hf;
  std::string scratch;
};

int run_verify(const VerifyArgs& args) {
  if (args.native.empty() == args.hf.empty())
    fail(ErrorKind::kUsage, "verify needs exactly one of --native CKPT or --hf HF_DIR");
  const auto start = std::chrono::steady_clock::now();
  const bool from_native = !args.native.empty();
  const std::string path = from_native ? args.native : args.hf;
  const ResolvedModel model =
      resolve_model(args.model, from_native ? Direction::kToHf : Direction::kFromHf, path);
  const ModelConfig& config = model.config;
  const FamilyRules rules = build_family_rules(config);
  WriteOptions write = write_options(args.run);
  set_activity({"read", "reading " + path});
  MappedCheckpoint input(read_checkpoint(path));
  throw_if_interrupted();
  if (from_native) write.native_format = input.catalog().format;
  const Direction direction = from_native ? Direction::kToHf : Direction::kFromHf;
  // Room for both intermediates is checked before any work; by default they go beside the
  // input when that is writable (never into a read-only input's folder), else to $TMPDIR.
  uint64_t first_bytes = 0;
  for (const auto& [name, size] :
       write_conversion(direction, config, rules, input, {}, write, true).files)
    first_bytes += size;
  const std::filesystem::path input_path = std::filesystem::absolute(path).lexically_normal();
  const std::filesystem::path named =
      input_path.has_filename() ? input_path : input_path.parent_path();
  const std::filesystem::path scratch = scratch_directory(
      args.run, args.scratch, named.parent_path(), round_trip_scratch_bytes(first_bytes, false));
  set_activity({"verify", "verifying " + path});
  VerifyReport report =
      verify_roundtrip(direction, config, rules, input, scratch / named.filename(), write);
  print_verify(args.run, report);
  nlohmann::json json = {{"command", "verify"},
                         {"model", config.family()},
                         {"flavor", config.flavor()},
                         {"input", path},
                         {"start", from_native ? "native" : "hf"},
                         {"verify", verify_json(report)},
                         {"seconds", seconds_since(start)}};
  report_model(args.run, model, json);
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
  add_model_options(*command, args->model);
  add_hf_config_option(*command, args->model);
  add_run_options(*command, args->run);
  auto* native = command->add_option("--native", args->native, "start from this native checkpoint");
  auto* hf = command->add_option("--hf", args->hf, "start from this HF checkpoint");
  native->excludes(hf);
  command->add_option("--scratch", args->scratch,
                      "directory for the intermediate checkpoints (default: beside the input when "
                      "writable with room, else $TMPDIR)");
  command->callback([args, &exit_code]() { exit_code = run_verify(*args); });
}

}  // namespace ckconv::cli
