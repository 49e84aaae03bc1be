// What a torchtitan training config file says about the model its checkpoints hold
// (--train-config FILE). Two generations are files a user holds:
// - up to v0.2.x, a TOML job config (train_configs/*.toml): [model] name, flavor and
//   hf_assets_path, [checkpoint] export_dtype;
// - from 2026-02 on, configs are Python functions (config_registry.py), which ckconv cannot
//   run; a run started with --debug.save_config_file writes the resolved config as JSON:
//   model_spec.name and .flavor, checkpoint.export_dtype, hf_assets_path.
// A Python config given instead is refused, saying what to give.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "core/dtype.h"

namespace ckconv {

struct TrainConfig {
  std::filesystem::path path;
  std::string kind;    // "toml" or "json"
  std::string family;  // torchtitan's model name, which is ckconv's family name
  std::string flavor;
  std::string family_field;  // where the file says them: "model.name" or "model_spec.name"
  std::string flavor_field;
  // checkpoint.export_dtype as written ("float16", "bfloat16", "float32"), when stated.
  std::optional<std::string> export_dtype;
  std::string hf_assets_path;  // empty when not stated
};

// Reads `path`: a .py file is kUsage (it cannot be executed); JSON when the text starts with
// '{', else the TOML subset (formats/toml/toml_subset.h). kBadInput for a file that does not
// parse, lacks the model's name or flavor, or states them (or export_dtype) as something
// other than what torchtitan accepts, each naming the file and the field.
TrainConfig read_train_config(const std::filesystem::path& path);

// The cast torchtitan applies to a final model-only export for `export_dtype`: none for
// "float32" (what training keeps; up to 2026-08 torchtitan casts nothing then), else bf16 or
// f16.
std::optional<DType> export_cast(const std::string& export_dtype);

}  // namespace ckconv
