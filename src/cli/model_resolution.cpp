// How to-hf, from-hf and verify learn the model: from-hf (and verify --hf) read the HF
// input's config.json when it has one; --hf-config FILE supplies one for a native input
// (e.g. the config of the release a model was fine-tuned from); otherwise --model/--flavor.
#include <spdlog/spdlog.h>

#include "cli/common.h"
#include "core/error.h"
#include "core/file.h"

namespace ckconv::cli {
namespace {

constexpr uint64_t kMaxHfConfigBytes = 16 << 20;

ModelRequest model_request(const ModelOptions& options) {
  ModelRequest request{options.model, options.flavor, {}, std::nullopt};
  if (!options.set_from.empty()) request.overrides = read_overrides_file(options.set_from);
  for (const auto& text : options.sets) request.overrides.push_back(parse_override(text));
  if (!options.config_file.empty()) request.config_file = options.config_file;
  return request;
}

nlohmann::json read_hf_config(const std::filesystem::path& path) {
  try {
    return nlohmann::json::parse(read_small_file(path, kMaxHfConfigBytes));
  } catch (const nlohmann::json::exception& error) {
    fail_input(path.string() + ": invalid JSON: " + error.what());
  }
}

// config.json beside an HF input (a directory, or one of its files); empty when none.
std::filesystem::path hf_input_config(const std::string& input) {
  std::filesystem::path dir = input;
  if (!std::filesystem::is_directory(dir)) dir = dir.parent_path();
  const std::filesystem::path config = dir / "config.json";
  return std::filesystem::exists(config) ? config : std::filesystem::path();
}

}  // namespace

void add_hf_config_option(CLI::App& app, ModelOptions& options) {
  app.add_option("--hf-config", options.hf_config,
                 "a transformers config.json naming the model (family and fields); for a native "
                 "input, e.g. the config of the release it was fine-tuned from");
}

ResolvedModel resolve_model(const ModelOptions& options, Direction direction,
                            const std::string& input) {
  const ModelRequest request = model_request(options);
  std::filesystem::path config = options.hf_config;
  if (config.empty() && direction == Direction::kFromHf) config = hf_input_config(input);
  ResolvedModel model =
      config.empty() ? resolve_from_flags(request)
                     : resolve_with_hf_config(request, read_hf_config(config), config.string());
  if (direction == Direction::kToHf)
    model.unconfirmed = fields_not_in_shapes(model, build_family_rules(model.config), request);
  return model;
}

QuantizationOptions hf_quantization(const ModelOptions& options, const std::string& input) {
  std::filesystem::path path = options.hf_config;
  if (path.empty()) path = hf_input_config(input);
  QuantizationOptions quantization;
  if (path.empty()) return quantization;
  const nlohmann::json config = read_hf_config(path);
  const nlohmann::json quant = config.value("quantization_config", nlohmann::json::object());
  if (!quant.is_object() || !quant.contains("weight_block_size")) return quantization;
  const nlohmann::json& block = quant["weight_block_size"];
  if (!block.is_array() || block.size() != 2 || !block[0].is_number_integer() ||
      !block[1].is_number_integer() || block[0].get<int64_t>() <= 0 || block[1].get<int64_t>() <= 0)
    fail_input(path.string() +
               ": quantization_config.weight_block_size must be two positive "
               "integers, found " +
               block.dump());
  quantization.fp8_block_rows = block[0].get<int64_t>();
  quantization.fp8_block_cols = block[1].get<int64_t>();
  return quantization;
}

void report_model(const RunOptions& options, const ResolvedModel& model, nlohmann::json& report) {
  for (const std::string& warning : model.warnings)
    spdlog::warn("{} (metadata only; the converted tensors do not depend on it)", warning);
  nlohmann::json unconfirmed = nlohmann::json::array();
  for (const FieldSource& item : model.unconfirmed) {
    unconfirmed.push_back({{"field", item.field}, {"value", item.value}, {"source", item.source}});
    if (!options.quiet)
      spdlog::info("{} {} from {}, not confirmed by the checkpoint", item.field, item.value.dump(),
                   item.source);
  }
  report["resolution"] = {
      {"source", model.source},
      {"equals_flavor", model.equals ? nlohmann::json(*model.equals) : nlohmann::json(nullptr)},
      {"warnings", model.warnings},
      {"unconfirmed", unconfirmed}};
  if (options.quiet || model.source == "flags") return;
  spdlog::info("{}: {}", model.source,
               model.equals ? "matches " + *model.equals
                            : "a " + model.config.family() + " model equal to no built-in flavor");
}

}  // namespace ckconv::cli
