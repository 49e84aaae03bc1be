// The rule pieces every family writes the same way (renames, q/k/v projections plain or
// fused, SwiGLU feed-forwards, per-expert splits, layer norms, embeddings and head), so each
// family's file states only what is particular to it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "adapters/adapter.h"

namespace ckconv {

class RuleBuilder {
 public:
  explicit RuleBuilder(std::vector<Rule>& rules) : rules_(rules) {}

  void add(Rule rule) { rules_.push_back(std::move(rule)); }
  void rename(std::string native, std::string hf);

  // tok_embeddings.weight <-> {hf_model}embed_tokens.weight.
  void embeddings(const std::string& hf_model);
  // norm.weight <-> {hf_model}norm.weight, and lm_head.weight <-> `hf_lm_head`, or the tied
  // rule (omitted on to_hf, copied from the embeddings on from_hf).
  void head(const std::string& hf_model, const std::string& hf_lm_head, bool tied);

  struct Attention {
    int64_t heads = 0;
    int64_t kv_heads = 0;
    int64_t head_dim = 0;
    bool fused = false;         // native holds one wqkv
    bool rope_permute = false;  // llama3: q and k rows interleaved <-> rotate-half
  };
  // layers.{i}.attention.qkv_linear.{wq,wk,wv}.{suffix} (or wqkv) <->
  // {hf_layer}self_attn.{q,k,v}_proj.{suffix}.
  void attention_qkv(int64_t layer, const std::string& hf_layer, const Attention& attention,
                     const std::string& suffix = "weight");
  // attention_norm / ffn_norm <-> input_layernorm / post_attention_layernorm.
  void layer_norms(int64_t layer, const std::string& hf_layer);
  // {native}w1/w2/w3.weight <-> {hf}gate_proj/down_proj/up_proj.weight.
  void swiglu(const std::string& native, const std::string& hf);
  // layers.{i}.moe.experts.{w1_EFD,w2_EDF,w3_EFD} [E, ...] <->
  // {hf_experts}{e}.{gate,down,up}_proj.weight, experts in ascending integer order.
  void per_expert_swiglu(int64_t layer, const std::string& hf_experts, int64_t experts);

 private:
  std::vector<Rule>& rules_;
};

// "model.layers.3." under `hf_model` = "model.".
std::string hf_layer_prefix(const std::string& hf_model, int64_t layer);

}  // namespace ckconv
