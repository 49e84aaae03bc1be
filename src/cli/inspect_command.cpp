// `ckconv inspect PATH`: format, tensor count, bytes and every tensor's name, dtype, shape.
#include <cstdio>
#include <memory>

#include "cli/common.h"
#include "formats/checkpoint_reader.h"
#include "formats/training_state.h"

namespace ckconv::cli {
namespace {

struct InspectArgs {
  std::string path;
  bool json = false;
};

int run_inspect(const InspectArgs& args) {
  const Catalog catalog = read_checkpoint(args.path);
  uint64_t total = 0;
  nlohmann::json tensors = nlohmann::json::array();
  for (const auto& tensor : catalog.tensors) {
    const uint64_t bytes =
        static_cast<uint64_t>(num_elements(tensor.shape) * dtype_size(tensor.dtype));
    total += bytes;
    tensors.push_back({{"name", tensor.name},
                       {"dtype", dtype_name(tensor.dtype)},
                       {"shape", tensor.shape},
                       {"bytes", bytes},
                       {"chunks", tensor.chunks.size()}});
  }
  nlohmann::json skipped = nlohmann::json::array();
  for (const auto& item : catalog.skipped)
    skipped.push_back({{"name", item.name},
                       {"reason", item.reason},
                       {"rule", skip_rule_for(item.name, "non_tensor")}});
  if (args.json) {
    nlohmann::json report = {{"path", args.path},
                             {"format", checkpoint_format_name(catalog.format)},
                             {"files", catalog.files.size()},
                             {"tensor_count", catalog.tensors.size()},
                             {"tensor_bytes", total},
                             {"metadata", catalog.metadata},
                             {"tensors", tensors},
                             {"skipped", skipped}};
    std::printf("%s\n", report.dump(2).c_str());
    return 0;
  }
  std::printf("path:    %s\nformat:  %s\nfiles:   %zu\ntensors: %zu\nbytes:   %llu\n",
              args.path.c_str(), std::string(checkpoint_format_name(catalog.format)).c_str(),
              catalog.files.size(), catalog.tensors.size(), static_cast<unsigned long long>(total));
  for (const auto& [key, value] : catalog.metadata)
    std::printf("metadata: %s = %s\n", key.c_str(), value.c_str());
  for (const auto& tensor : catalog.tensors) {
    std::string line = std::string(dtype_name(tensor.dtype)) + " " + shape_to_string(tensor.shape);
    if (tensor.chunks.size() > 1) line += " (" + std::to_string(tensor.chunks.size()) + " chunks)";
    std::printf("  %-60s %s\n", tensor.name.c_str(), line.c_str());
  }
  for (const auto& item : catalog.skipped)
    std::printf("  skipped %s: %s\n", item.name.c_str(), item.reason.c_str());
  return 0;
}

}  // namespace

void add_inspect_command(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<InspectArgs>();
  CLI::App* command = app.add_subcommand("inspect", "show a checkpoint's format and tensors");
  command->footer(
      "\nExamples:\n  ckconv inspect outputs/checkpoint/step-1000\n"
      "  ckconv inspect Llama-3.1-8B/ --json");
  command->add_option("path", args->path, "checkpoint file or directory")->required();
  command->add_flag("--json", args->json, "print JSON");
  command->callback([args, &exit_code]() { exit_code = run_inspect(*args); });
}

}  // namespace ckconv::cli
