#include "cli/part_command.h"

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <memory>

#include "cli/part_option.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "pipeline/part_publish.h"
#include "pipeline/part_writer.h"

namespace ckconv::cli {
namespace {

nlohmann::json publish_json(const PartPublishResult& published) {
  nlohmann::json files = nlohmann::json::array();
  for (const auto& [name, size] : published.files)
    files.push_back({{"path", name}, {"bytes", size}});
  return {{"published", true},
          {"output", published.target.string()},
          {"parts", published.parts},
          {"files", files},
          {"replaced", published.replaced}};
}

void log_published(const RunOptions& run, const PartPublishResult& published) {
  print_notes(run, published.notes);
  print_replaced(run, published.replaced);
  if (!run.quiet)
    spdlog::info("all {} parts complete: published {}", published.parts, published.target.string());
}

// Publishes when every part is complete and no other process took the claim first.
std::optional<PartPublishResult> publish_if_last(const PartStaging& staging,
                                                 const std::filesystem::path& target, bool force) {
  uint32_t parts = 0;
  try {
    parts = staging.read_plan().parts;
  } catch (const Error&) {
    // No plan any more: another part finished last, published and removed the staging.
    std::error_code error;
    if (!std::filesystem::exists(staging.directory() / "plan", error)) return std::nullopt;
    throw;
  }
  if (staging.markers_present(parts) < parts) return std::nullopt;
  if (!staging.claim()) return std::nullopt;  // another part is publishing
  set_activity({"publish", "publishing " + target.string()});
  return publish_claimed_parts(staging, target, force);
}

}  // namespace

void add_part_option(CLI::App& command, std::string& part, CLI::Option* verify) {
  command
      .add_option("--part", part,
                  "write only part I/N of the output into a staging directory shared by all "
                  "parts (I/N, or torchrun, slurm, auto: from the launcher's variables); the "
                  "last part to finish, or `ckconv publish OUTPUT`, publishes")
      ->excludes(verify);
}

int run_convert_part(Direction direction, const ModelConfig& config, const FamilyRules& rules,
                     const MappedCheckpoint& input, const WriteOptions& write,
                     const RunOptions& run, const PartRunOptions& options, nlohmann::json& report) {
  const auto start = std::chrono::steady_clock::now();
  const PartSpec part = parse_part_option(
      options.part, [](const char* name) { return static_cast<const char*>(std::getenv(name)); });
  const PlannedConversion planned = plan_conversion_output(direction, config, rules, input, write);
  report["conversion"] = summary_json(planned.summary);
  report["part"] = {{"index", part.index + 1}, {"count", part.count}};
  const std::filesystem::path staging_path = part_staging_path(options.output);
  if (options.dry_run) {
    const ExecuteOptions execute = execute_options(write);
    const BlockBuilder builder(planned.execution, planned.file_plan, execute.block_bytes);
    const auto [first, end] = part_block_range(builder.blocks(), part);
    uint64_t bytes = 0;
    for (size_t i = first; i < end; ++i) bytes += builder.blocks()[i].size_bytes;
    report["dry_run"] = true;
    report["part"]["bytes"] = bytes;
    if (!run.quiet)
      spdlog::info("dry run: part {} would write blocks {}-{} of {} ({} bytes) into {}",
                   part.label(), first, end, builder.blocks().size(), bytes, staging_path.string());
    write_report(run, report);
    return 0;
  }
  set_activity({"write", "writing part " + part.label() + " into " + staging_path.string(),
                "its partial files stay in the staging directory; run the part again"});
  const PartWriteResult written =
      write_part(planned, options.output, part, execute_options(write), options.force);
  const double seconds = seconds_since(start);
  report["part"]["bytes"] = written.bytes_written;
  report["part"]["blocks"] = {written.first_block, written.end_block};
  report["part"]["parts_complete"] = written.parts_complete;
  report["seconds"] = seconds;
  if (!run.quiet)
    spdlog::info(
        "part {}: wrote {:.1f} MiB ({} file(s)) in {:.2f} s into {}; {} of {} parts "
        "complete",
        part.label(), written.bytes_written / 1048576.0, written.files_touched.size(), seconds,
        staging_path.string(), written.parts_complete, part.count);
  const PartStaging staging(staging_path);
  if (const auto published = publish_if_last(staging, options.output, options.force)) {
    report["publish"] = publish_json(*published);
    log_published(run, *published);
  } else if (!run.quiet) {
    spdlog::info("the last part to finish publishes (or run: ckconv publish {})", options.output);
  }
  write_report(run, report);
  return 0;
}

void add_publish_command(CLI::App& app, int& exit_code) {
  struct PublishArgs {
    RunOptions run;
    std::string path;
    bool force = false;
  };
  auto args = std::make_shared<PublishArgs>();
  CLI::App* command = app.add_subcommand(
      "publish", "check that every part of a split conversion (--part) is complete, and publish");
  command
      ->add_option("path", args->path,
                   "the output given to the parts (or its .<name>.ckconv-parts staging)")
      ->required();
  command->add_flag("--force", args->force,
                    "replace the checkpoint files already in the output directory");
  command->add_option("--json", args->run.json_report,
                      "write a machine-readable report to this file ('-' = stdout)");
  command->add_flag("-q,--quiet", args->run.quiet, "print only errors");
  command->callback([args, &exit_code]() {
    const auto target = part_staging_target(args->path);
    const std::filesystem::path output = target ? *target : std::filesystem::path(args->path);
    const PartStaging staging(target ? std::filesystem::path(args->path)
                                     : part_staging_path(args->path));
    std::error_code error;
    if (!std::filesystem::is_directory(staging.directory(), error))
      fail_input("no parts to publish: " + staging.directory().string() + " does not exist");
    set_activity({"publish", "publishing " + output.string()});
    const PartPublishResult published = publish_parts(staging, output, args->force);
    log_published(args->run, published);
    nlohmann::json report = publish_json(published);
    report["command"] = "publish";
    write_report(args->run, report);
    exit_code = 0;
  });
}

}  // namespace ckconv::cli
