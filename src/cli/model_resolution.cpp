// How to-hf, from-hf and verify learn the model: from-hf (and verify --hf) read the HF
// input's config.json when it has one; --hf-config FILE supplies one for a native input
// (e.g. the config of the release a model was fine-tuned from); otherwise --model/--flavor.
#include <spdlog/spdlog.h>

#include <cstring>

#include "cli/common.h"
#include "core/error.h"
#include "core/file.h"
#include "families/hf_layout.h"
#include "families/model_aliases.h"
#include "families/native_scheme.h"
#include "pipeline/plan.h"

namespace ckconv::cli {
namespace {

constexpr uint64_t kMaxHfConfigBytes = 16 << 20;

// --dtype's spelling of a cast.
std::string dtype_option_name(DType dtype) {
  return dtype == DType::kBF16 ? "bf16" : dtype == DType::kF16 ? "f16" : "f32";
}

bool is_flavor_of(const std::string& family, const std::string& flavor) {
  const std::vector<std::string> flavors = list_flavors(family);
  return std::find(flavors.begin(), flavors.end(), flavor) != flavors.end();
}

// --model and --flavor as ckconv names them; other spellings (HF repository names, model
// types: model_aliases.h) are resolved, with a note saying to what.
void resolve_names(ModelRequest& request, std::vector<std::string>& notes) {
  const std::vector<std::string> families = list_families();
  const std::string given_model = request.family, given_flavor = request.flavor;
  if (!request.family.empty() &&
      std::find(families.begin(), families.end(), request.family) == families.end()) {
    if (const std::optional<ModelName> name = resolve_model_alias(request.family)) {
      request.family = name->family;
      if (request.flavor.empty()) request.flavor = name->flavor;
    }
  }
  const bool known_family =
      std::find(families.begin(), families.end(), request.family) != families.end();
  if (!request.flavor.empty() && !(known_family && is_flavor_of(request.family, request.flavor))) {
    const std::optional<ModelName> name = resolve_model_alias(request.flavor);
    if (name && !name->flavor.empty() &&
        (request.family.empty() || request.family == name->family)) {
      request.family = name->family;
      request.flavor = name->flavor;
    }
  }
  if (request.family == given_model && request.flavor == given_flavor) return;
  std::string given = given_model.empty() ? "--flavor " + given_flavor : "--model " + given_model;
  if (!given_model.empty() && !given_flavor.empty()) given += " --flavor " + given_flavor;
  notes.push_back(given + " is " + request.family +
                  (request.flavor.empty() ? "" : "/" + request.flavor));
}

ModelRequest model_request(const ModelOptions& options, const std::optional<TrainConfig>& train,
                           std::vector<std::string>& notes, std::vector<std::string>& warnings) {
  ModelRequest request{options.model, options.flavor, {}, std::nullopt, {}};
  if (options.config_file.empty()) resolve_names(request, notes);
  if (!options.set_from.empty()) request.overrides = read_overrides_file(options.set_from);
  for (const auto& text : options.sets) request.overrides.push_back(parse_override(text));
  if (!options.config_file.empty()) request.config_file = options.config_file;
  if (train) {
    request = with_train_config(request, *train, warnings);
    notes.push_back(train->path.string() + " (" + train->kind + " training config) names " +
                    train->family + "/" + train->flavor);
  }
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

// Whether two tensors hold the same bytes, read in slices so memory stays flat.
bool same_tensor_data(const MappedCheckpoint& input, const CatalogTensor& a,
                      const CatalogTensor& b) {
  const int64_t total = num_elements(a.shape);
  const int64_t slice = int64_t{1} << 20;
  const size_t element_bytes = static_cast<size_t>(dtype_size(a.dtype));
  std::vector<uint8_t> first(static_cast<size_t>(std::min(total, slice)) * element_bytes);
  std::vector<uint8_t> second(first.size());
  for (int64_t start = 0; start < total; start += slice) {
    const int64_t count = std::min(slice, total - start);
    input.read_elements(a, start, count, first.data());
    input.read_elements(b, start, count, second.data());
    input.release_elements(a, start, count);
    input.release_elements(b, start, count);
    if (std::memcmp(first.data(), second.data(), static_cast<size_t>(count) * element_bytes) != 0)
      return false;
  }
  return true;
}

// The model of a native input without a config.json: --model/--flavor, with the family
// read from the keys when only --flavor is given, else everything the shapes show.
ResolvedModel resolve_native(ModelRequest request, const MappedCheckpoint& input) {
  const bool named = !request.family.empty() && !request.flavor.empty();
  const std::optional<DetectedModel> detected = detect_native_model(
      input.catalog(), named || !request.flavor.empty()
                           ? SameTensorData()
                           : [&input](const CatalogTensor& a, const CatalogTensor& b) {
                               return same_tensor_data(input, a, b);
                             });
  if (!detected) {
    if (named) return resolve_from_flags(request);
    if (looks_like_hf(input.catalog()))
      fail_input(input.catalog().path.string() +
                 " is an HF checkpoint (model.* keys); convert it with from-hf");
    fail(ErrorKind::kUsage, "the keys of " + input.catalog().path.string() +
                                " are of no model family this build knows; name the model: "
                                "--model FAMILY --flavor FLAVOR, or --hf-config config.json");
  }
  if (request.flavor.empty()) return resolve_detected(request, *detected);
  std::string note;
  if (request.family.empty()) {
    request.family = detected->family;
    note = "family " + detected->family + " from the checkpoint's keys";
  }
  ResolvedModel model = resolve_from_flags(request);
  if (!note.empty()) model.notes.push_back(note);
  const nlohmann::json& fields = model.config.fields();
  model.heads_confirmed = detected->fields.contains("n_heads") &&
                          detected->fields["n_heads"] == fields["n_heads"] &&
                          detected->fields.value("n_kv_heads", nlohmann::json()) ==
                              fields.value("n_kv_heads", nlohmann::json());
  return model;
}

// from-hf of a native checkpoint, with nothing naming the model: says what it is.
void refuse_native_for_from_hf(const MappedCheckpoint& input) {
  if (const std::optional<DetectedModel> detected = detect_native_model(input.catalog(), {}))
    fail_input(input.catalog().path.string() + " is a native torchtitan checkpoint (" +
               describe_detected(*detected) + "); convert it with to-hf");
}

// What the input is when it does not fit the model: an HF checkpoint given to to-hf, a
// native one given to from-hf, or a native checkpoint of other shapes than the flavor's.
std::string input_guidance(Direction direction, const ModelConfig& config, const Catalog& input) {
  const std::optional<DetectedModel> detected = detect_native_model(input, {});
  if (direction == Direction::kFromHf)
    return detected ? "\n  this is a native torchtitan checkpoint (" +
                          describe_detected(*detected) + "); convert it with to-hf"
                    : "";
  if (!detected)
    return looks_like_hf(input) ? "\n  this is an HF checkpoint; convert it with from-hf" : "";
  if (detected->family != config.family())
    return "\n  its keys are those of " + describe_detected(*detected) + ": use --model " +
           detected->family + " (or omit --model and --flavor)";
  return mismatch_guidance(*detected, config);
}

}  // namespace

void check_input_plan(Direction direction, const ResolvedModel& model, const FamilyRules& rules,
                      const MappedCheckpoint& input, const WriteOptions& write) {
  try {
    // A dry run of the conversion: the plan over the input as the rules see it (quantized
    // tensors decoded), nothing executed.
    write_conversion(direction, model.config, rules, input, {}, write, true);
  } catch (const Error& error) {
    if (error.kind() != ErrorKind::kBadInput) throw;
    throw Error(ErrorKind::kBadInput,
                error.what() + input_guidance(direction, model.config, input.catalog()),
                error.keys());
  }
}

void add_hf_config_option(CLI::App& app, ModelOptions& options) {
  app.add_option("--hf-config", options.hf_config,
                 "a transformers config.json naming the model (family and fields); for a native "
                 "input, e.g. the config of the release it was fine-tuned from");
}

ModelConfig load_config(const RunOptions& run, const ModelOptions& options) {
  std::vector<std::string> notes, warnings;
  const ResolvedModel model =
      resolve_from_flags(model_request(options, std::nullopt, notes, warnings));
  if (!run.quiet)
    for (const std::string& note : notes) spdlog::info("{}", note);
  return model.config;
}

void add_train_config_option(CLI::App& app, ModelOptions& options) {
  app.add_option("--train-config", options.train_config,
                 "the torchtitan training config of the checkpoint: a TOML job config "
                 "(train_configs/*.toml, up to v0.2.x) or the JSON a run saved with "
                 "--debug.save_config_file; gives the model name and flavor, and "
                 "checkpoint.export_dtype the default --dtype of to-hf");
}

ResolvedModel resolve_model(const ModelOptions& options, Direction direction,
                            const std::string& input_path, const MappedCheckpoint& input) {
  std::vector<std::string> name_notes, train_warnings;
  std::optional<TrainConfig> train;
  if (!options.train_config.empty()) train = read_train_config(options.train_config);
  const ModelRequest request = model_request(options, train, name_notes, train_warnings);
  std::filesystem::path config = options.hf_config;
  if (config.empty() && direction == Direction::kFromHf) config = hf_input_config(input_path);
  ResolvedModel model;
  if (!config.empty())
    model = resolve_with_hf_config(request, read_hf_config(config), config.string());
  else if (direction == Direction::kToHf)
    model = resolve_native(request, input);
  else if (request.family.empty() && request.flavor.empty())
    refuse_native_for_from_hf(input);
  if (model.source.empty()) model = resolve_from_flags(request);
  model.notes.insert(model.notes.begin(), name_notes.begin(), name_notes.end());
  model.warnings.insert(model.warnings.end(), train_warnings.begin(), train_warnings.end());
  model.train_config = train;
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

// Every config field with its value and source, for --json.
nlohmann::json resolved_fields(const ResolvedModel& model) {
  nlohmann::json fields = nlohmann::json::object();
  for (const auto& item : model.config.fields().items())
    fields[item.key()] = {{"value", item.value()},
                          {"source", model.field_sources.value(item.key(), std::string())}};
  return fields;
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
  // --drop-mtp: no MTP blocks in the native model, even where its scheme has them.
  if (options.drop_mtp && config.has("num_mtp_layers")) config.set("num_mtp_layers", 0);
}

void report_dropped_mtp(const RunOptions& run, const HfLayoutOptions& options,
                        const ModelConfig& config, const NativeLayout& layout,
                        nlohmann::json& report) {
  const int64_t kept = scheme_has_mtp(layout.scheme) && config.has("num_mtp_layers")
                           ? config.get_int("num_mtp_layers")
                           : 0;
  const int64_t mtp = std::max<int64_t>(0, hf_mtp_layers(config) - kept);
  report["hf_layout"]["mtp_layers_dropped"] = mtp;
  if (mtp == 0) return;
  const std::string dropped =
      "the " + std::to_string(mtp) + " multi-token-prediction layer(s) of the HF input are " +
      "dropped: the native model (scheme " + native_scheme_name(layout.scheme) +
      ") has no place for them (their copies of the embeddings and output head must equal the "
      "main ones; --native-scheme 2026-08 keeps them as mtp_layers.*)";
  if (options.drop_mtp) {
    if (!run.quiet) spdlog::info("{} (--drop-mtp)", dropped);
  } else {
    spdlog::warn("{}; --drop-mtp makes this explicit", dropped);
  }
}

std::optional<DType> export_dtype_default(const RunOptions& options, const ResolvedModel& model,
                                          std::optional<DType> given, nlohmann::json& report) {
  if (!model.train_config || !model.train_config->export_dtype) return given;
  const std::string& stated = *model.train_config->export_dtype;
  nlohmann::json& entry = report["resolution"]["train_config"];
  if (given) {
    entry["dtype"] = {{"value", dtype_option_name(*given)}, {"source", "--dtype"}};
    return given;
  }
  const std::optional<DType> cast = export_cast(stated);
  entry["dtype"] = {
      {"value", cast ? nlohmann::json(dtype_option_name(*cast)) : nlohmann::json(nullptr)},
      {"source", "train-config"}};
  if (!options.quiet)
    spdlog::info("checkpoint.export_dtype \"{}\" in {}: {} (--dtype chooses otherwise)", stated,
                 model.train_config->path.string(),
                 cast ? "floating tensors are cast to " + dtype_option_name(*cast)
                      : std::string("each tensor keeps its dtype, as torchtitan's export"));
  return cast;
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
  if (!options.quiet)
    for (const std::string& note : model.notes) spdlog::info("{}", note);
  report["resolution"] = {
      {"source", model.source},
      {"fields", resolved_fields(model)},
      {"equals_flavor", model.equals ? nlohmann::json(*model.equals) : nlohmann::json(nullptr)},
      {"warnings", model.warnings},
      {"unconfirmed", unconfirmed}};
  if (const std::optional<TrainConfig>& train = model.train_config)
    report["resolution"]["train_config"] = {
        {"path", train->path.string()},
        {"kind", train->kind},
        {"family", train->family},
        {"flavor", train->flavor},
        {"export_dtype", train->export_dtype ? nlohmann::json(*train->export_dtype) : nullptr},
        {"hf_assets_path", train->hf_assets_path}};
  if (options.quiet || model.source == "flags" || model.source == "detected") return;
  spdlog::info("{}: {}", model.source,
               model.equals ? "matches " + *model.equals
                            : "a " + model.config.family() + " model equal to no built-in flavor");
}

}  // namespace ckconv::cli
