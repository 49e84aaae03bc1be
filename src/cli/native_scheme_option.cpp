// --native-scheme and the report of which torchtitan native key scheme a command reads or
// writes (families/native_scheme.h).
#include <spdlog/spdlog.h>

#include "cli/common.h"
#include "core/error.h"

namespace ckconv::cli {
namespace {

nlohmann::json layout_json(const NativeLayout& layout, const std::string& source) {
  nlohmann::json variants = nlohmann::json::array();
  if (layout.fused_qkv) variants.push_back("wqkv");
  if (!layout.fused_swiglu_keys.empty()) variants.push_back("w13");
  return {{"name", native_scheme_name(layout.scheme)}, {"variants", variants}, {"source", source}};
}

}  // namespace

void add_native_scheme_option(CLI::App& app, std::string& scheme, bool writes) {
  std::vector<std::string> names;
  for (NativeScheme known : all_native_schemes()) names.push_back(native_scheme_name(known));
  app.add_option("--native-scheme", scheme,
                 writes
                     ? "torchtitan key scheme to write: v0.1, v0.2, 2026-06 or 2026-08 (default: "
                       "the newest that has the family)"
                     : "read the native checkpoint as this torchtitan key scheme (v0.1, v0.2, "
                       "2026-06, 2026-08) instead of detecting it from its keys")
      ->check(CLI::IsMember(names));
}

NativeLayout read_native_layout(const RunOptions& options, const std::string& forced,
                                const ModelConfig& config, const Catalog& input,
                                nlohmann::json& report) {
  std::vector<std::string> keys;
  for (const CatalogTensor& tensor : input.tensors) keys.push_back(tensor.name);
  std::optional<NativeScheme> forced_scheme;
  if (!forced.empty()) forced_scheme = parse_native_scheme(forced);
  // A forced scheme still takes the layout variants (wqkv, w13) from the keys; detection
  // errors (mixed generations) are then not fatal.
  SchemeDetection detection;
  if (forced_scheme) {
    try {
      detection = detect_native_scheme(keys);
    } catch (const Error&) {
      detection = {};
    }
  } else {
    detection = detect_native_scheme(keys);
  }
  const NativeLayout layout =
      reading_layout(detection, config.family(), forced_scheme ? &*forced_scheme : nullptr);
  nlohmann::json json = layout_json(layout, forced_scheme ? "--native-scheme" : "detected");
  nlohmann::json candidates = nlohmann::json::array();
  for (NativeScheme scheme : detection.candidates) candidates.push_back(native_scheme_name(scheme));
  json["candidates"] = candidates;
  json["deciding_keys"] = detection.deciding_keys;
  report["native_scheme"] = json;
  if (!options.quiet) {
    std::string keys_text;
    for (const std::string& key : detection.deciding_keys)
      keys_text += (keys_text.empty() ? "" : ", ") + key;
    if (forced_scheme)
      spdlog::info("native scheme: {} (--native-scheme)", native_layout_description(layout));
    else
      spdlog::info("native scheme: {} (detected from {}{})", native_layout_description(layout),
                   keys_text,
                   detection.candidates.size() > 1
                       ? "; the same keys in " + std::to_string(detection.candidates.size()) +
                             " schemes, the newest with " + config.family() + " taken"
                       : "");
  }
  return layout;
}

NativeLayout write_native_layout(const RunOptions& options, const std::string& name,
                                 const ModelConfig& config, nlohmann::json& report) {
  const NativeScheme scheme =
      name.empty() ? newest_scheme_for(config.family()) : parse_native_scheme(name);
  const NativeLayout layout = writing_layout(scheme, config);
  report["native_scheme"] = layout_json(layout, name.empty() ? "default" : "--native-scheme");
  if (!options.quiet)
    spdlog::info("native scheme: {}{}", native_layout_description(layout),
                 name.empty() ? " (the newest torchtitan scheme with " + config.family() +
                                    "; --native-scheme picks another)"
                              : "");
  return layout;
}

}  // namespace ckconv::cli
