// The native (torchtitan) side of a model: derived config fields and the exact list of
// tensors a flavor's `model.state_dict()` holds, with shapes, in torchtitan's order
// (spec/adapters.md §1.4 and each family's "Native keys" section). A checkpoint that does
// not match this list does not match its claimed flavor.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/shape.h"
#include "model/model_config.h"

namespace ckconv {

struct ExpectedTensor {
  std::string name;
  Shape shape;
  // Buffers torchtitan always keeps in float32 (MoE expert_bias_E); empty dtype = any float.
  bool float32_only = false;
};

// Fills fields a family derives from others (head_dim, hidden_dim, ...) when not set.
void derive_config_fields(ModelConfig& config);
std::vector<ExpectedTensor> expected_native_tensors(const ModelConfig& config);

// Per-family implementations (model/<family>_model.cpp).
void derive_llama3_fields(ModelConfig& config);
std::vector<ExpectedTensor> llama3_native_tensors(const ModelConfig& config);
void derive_qwen3_fields(ModelConfig& config);
std::vector<ExpectedTensor> qwen3_native_tensors(const ModelConfig& config);
void derive_llama4_fields(ModelConfig& config);
std::vector<ExpectedTensor> llama4_native_tensors(const ModelConfig& config);
bool llama4_is_moe_layer(const ModelConfig& config, int64_t layer);  // (layer + 1) % step == 0
void derive_gpt_oss_fields(ModelConfig& config);
std::vector<ExpectedTensor> gpt_oss_native_tensors(const ModelConfig& config);
void derive_deepseek_v3_fields(ModelConfig& config);
std::vector<ExpectedTensor> deepseek_v3_native_tensors(const ModelConfig& config);

// Shared helpers for family files.
std::string layer_key(int64_t layer, const std::string& suffix);  // "layers.3." + suffix
// Building blocks in torchtitan's registration order (spec/adapters.md §1.4):
// attention.qkv_linear.{wq,wk,wv}.weight (or wqkv) then attention.wo.weight.
void add_gqa_attention(std::vector<ExpectedTensor>& tensors, int64_t layer, bool fused,
                       int64_t q_rows, int64_t kv_rows, int64_t dim);
// {prefix}w1.weight [hidden, dim], w2.weight [dim, hidden], w3.weight [hidden, dim].
void add_swiglu(std::vector<ExpectedTensor>& tensors, const std::string& prefix, int64_t hidden,
                int64_t dim);
// layers.{i}.moe.experts.w1_EFD [E, F, D], w2_EDF [E, D, F], w3_EFD [E, F, D].
void add_grouped_experts(std::vector<ExpectedTensor>& tensors, int64_t layer, int64_t experts,
                         int64_t hidden, int64_t dim);
// layers.{i}.attention_norm.weight, ffn_norm.weight.
void add_layer_norms(std::vector<ExpectedTensor>& tensors, int64_t layer, int64_t dim);

// torchtitan compute_ffn_hidden_dim(dim, multiple_of, ffn_dim_multiplier) (adapters.md §1.4).
int64_t compute_ffn_hidden_dim(int64_t dim, int64_t multiple_of, std::optional<double> multiplier);

}  // namespace ckconv
