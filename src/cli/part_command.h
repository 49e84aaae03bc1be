// Conversions split across processes: `to-hf`/`from-hf --part` (one part) and `ckconv
// publish` (check the parts and publish). See pipeline/part_writer.h, pipeline/part_publish.h.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/common.h"

namespace ckconv::cli {

// Adds --part to a conversion command (not with --verify-roundtrip, which needs the whole
// output in one process).
void add_part_option(CLI::App& command, std::string& part, CLI::Option* verify);

// What a part run needs beyond the planned conversion's inputs.
struct PartRunOptions {
  std::string part;  // the --part text
  std::string output;
  bool force = false;
  bool dry_run = false;
};

// Writes this process's part (and publishes when it completes the set); adds "part" to
// `report`, writes it and returns the exit code.
int run_convert_part(Direction direction, const ModelConfig& config, const FamilyRules& rules,
                     const MappedCheckpoint& input, const WriteOptions& write,
                     const RunOptions& run, const PartRunOptions& options, nlohmann::json& report);

void add_publish_command(CLI::App& app, int& exit_code);

}  // namespace ckconv::cli
