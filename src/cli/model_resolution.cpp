// How to-hf, from-hf and verify learn the model: from-hf (and verify --hf) read the HF
// input's config.json when it has one; --hf-config FILE supplies one for a native input
// (e.g. the config of the release a model was fine-tuned from); otherwise --model/--flavor.
#include <spdlog/spdlog.h>

#include "cli/common.h"
#include "core/error.h"
#include "core/file.h"
#include "families/hf_layout.h"

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

void add_hf_layout_options(CLI::App& app, HfLayoutOptions& options) {
  app.add_option("--hf-layout", options.key_layout,
                 "llama4 HF keys: multimodal (default; language_model.model.*, as the hub "
                 "repository) or causal-lm (model.*, as Llama4ForCausalLM.save_pretrained)");
  app.add_option("--hf-expert-layout", options.expert_layout,
                 "HF MoE experts: per-expert (qwen3, deepseek_v3 default: mlp.experts.{e}.*) or "
                 "fused (transformers' 3-D gate_up_proj/down_proj; gpt_oss: the layout "
                 "GptOssForCausalLM loads)");
}

void add_drop_mtp_option(CLI::App& app, HfLayoutOptions& options) {
  app.add_flag("--drop-mtp", options.drop_mtp,
               "drop the HF multi-token-prediction layers (deepseek_v3 model.layers.{n_layers}.*), "
               "which the native scheme has no place for (without it they are dropped with a "
               "warning)");
}

void settle_hf_layouts(const RunOptions& run, const HfLayoutOptions& options, Direction direction,
                       const Catalog& input, ModelConfig& config, nlohmann::json& report) {
  std::vector<std::string> detected;
  if (direction == Direction::kToHf) {
    choose_hf_layouts(config, options.key_layout, options.expert_layout);
  } else {
    std::vector<std::string> keys;
    for (const CatalogTensor& tensor : input.tensors) keys.push_back(tensor.name);
    detected = detect_hf_layouts(config, keys);
  }
  const std::vector<std::string> warnings =
      direction == Direction::kToHf ? hf_layout_warnings(config) : std::vector<std::string>{};
  nlohmann::json layout = {{"expert_layout", hf_expert_layout(config)}, {"detected", detected}};
  if (config.family() == "llama4") layout["key_layout"] = hf_key_layout(config);
  layout["warnings"] = warnings;
  report["hf_layout"] = layout;
  for (const std::string& line : detected)
    if (!run.quiet) spdlog::info("{}", line);
  for (const std::string& warning : warnings) spdlog::warn("{}", warning);
  const int64_t mtp = hf_mtp_layers(config);
  report["hf_layout"]["mtp_layers_dropped"] = mtp;
  if (mtp == 0) return;
  const std::string dropped =
      "the " + std::to_string(mtp) +
      " multi-token-prediction layer(s) of the HF input are dropped: this native scheme has no "
      "MTP layers (their copies of the embeddings and output head must equal the main "
      "ones)";
  if (options.drop_mtp) {
    if (!run.quiet) spdlog::info("{} (--drop-mtp)", dropped);
  } else {
    spdlog::warn("{}; --drop-mtp makes this explicit", dropped);
  }
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
