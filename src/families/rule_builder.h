// The rule pieces every family writes the same way (renames, q/k/v projections plain or
// fused, SwiGLU feed-forwards, per-expert splits, layer norms, embeddings, final norm and
// output), each spelling its native keys with their shapes, so each family's rule file states
// only what is particular to it. The builder also keeps the native order (FamilyRules). Below
// it, the helpers family files share for key names, derived fields and config.json.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "families/family.h"

namespace ckconv {

class RuleBuilder {
 public:
  explicit RuleBuilder(FamilyRules& table) : table_(table) {}

  // Appends `rule`; its native tensors not declared yet come next in the native order.
  void add(Rule rule);
  void rename(NativeTensor native, std::string hf);
  // native -> dropped on to_hf, float32 zeros on from_hf; `reason`: why HF has no such tensor.
  void dropped_zeros(NativeTensor native, std::string reason);
  // Puts `names` next in the native order, ahead of the rules that consume them, for tensors
  // torchtitan registers in another order than the rules group them.
  void declare_native_order(const std::vector<std::string>& names);
  // HF keys matching `pattern` (an ECMAScript regex) are skipped by from_hf.
  void ignore_hf(std::string pattern);
  // The HF keys `rules` would write (rename, per-expert and concat-rows rules), as kDroppedHf
  // rules instead: consumed and dropped by from_hf when present. Each reason names the native
  // key the rule maps, so a native scheme that has these tensors keeps `rules` as they are.
  void dropped_hf(const std::vector<Rule>& rules, const std::string& reason);
  // `hf` [shape], a stored copy of HF tensor `copy_of`: dropped by from_hf when present, after
  // checking it bit-equal to `copy_of` (kBadInput naming both otherwise).
  void dropped_hf_copy(const std::string& hf, Shape shape, const std::string& copy_of,
                       const std::string& reason);

  // tok_embeddings.weight [vocab, dim] <-> {hf_model}embed_tokens.weight.
  void embeddings(const std::string& hf_model, int64_t vocab, int64_t dim);
  // norm.weight <-> {hf_model}norm.weight, and lm_head.weight <-> `hf_lm_head`, or when
  // `tied` the tied rule (omitted on to_hf, copied from the embeddings on from_hf).
  void final_norm_and_output(const std::string& hf_model, const std::string& hf_lm_head, bool tied,
                             int64_t vocab, int64_t dim);

  struct Attention {
    int64_t heads = 0;
    int64_t kv_heads = 0;
    int64_t head_dim = 0;
    int64_t dim = 0;            // model dim: the projections' input width
    bool fused = false;         // native holds one wqkv
    bool rope_permute = false;  // llama3: q and k rows interleaved <-> rotate-half
    bool bias = false;          // gpt_oss: each projection also has a bias
  };
  // layers.{i}.attention.qkv_linear.{wq,wk,wv}.weight (or wqkv) [rows, dim], and .bias [rows]
  // with `bias` <-> {hf_layer}self_attn.{q,k,v}_proj.{weight,bias}.
  void attention_qkv(int64_t layer, const std::string& hf_layer, const Attention& attention);
  // attention_norm / ffn_norm [dim] <-> input_layernorm / post_attention_layernorm.
  void layer_norms(int64_t layer, const std::string& hf_layer, int64_t dim);
  // The same under any native block prefix (deepseek_v3's "mtp_layers.{j}.").
  void layer_norms(const std::string& native_layer, const std::string& hf_layer, int64_t dim);
  // {native}w1/w2/w3.weight ([hidden, dim], [dim, hidden], [hidden, dim]) <->
  // {hf}gate_proj/down_proj/up_proj.weight.
  void swiglu(const std::string& native, const std::string& hf, int64_t hidden, int64_t dim);
  // layers.{i}.moe.experts.{w1_EFD,w2_EDF,w3_EFD} [E, ...] <->
  // {hf_experts}{e}.{gate,down,up}_proj.weight, experts in ascending integer order.
  void per_expert_swiglu(int64_t layer, const std::string& hf_experts, int64_t experts,
                         int64_t hidden, int64_t dim);
  void per_expert_swiglu(const std::string& native_layer, const std::string& hf_experts,
                         int64_t experts, int64_t hidden, int64_t dim);
  // The same experts in transformers' fused layout (what save_pretrained writes with
  // save_original_format=False): {hf_experts}gate_up_proj [E, 2F, D] = cat(w1_EFD, w3_EFD,
  // dim=1), gate rows first, and {hf_experts}down_proj [E, D, F] = w2_EDF; no .weight suffix.
  void fused_swiglu_experts(const std::string& native_layer, const std::string& hf_experts,
                            int64_t experts, int64_t hidden, int64_t dim);
  // per_expert_swiglu or fused_swiglu_experts, as hf_expert_layout(config) says.
  void swiglu_experts(const ModelConfig& config, int64_t layer, const std::string& hf_experts,
                      int64_t experts, int64_t hidden, int64_t dim);
  void swiglu_experts(const ModelConfig& config, const std::string& native_layer,
                      const std::string& hf_experts, int64_t experts, int64_t hidden, int64_t dim);

 private:
  void add_to_native_order(const std::string& name);

  FamilyRules& table_;
  std::set<std::string> ordered_;  // names already in table_.native_order
};

// "layers.3." + suffix.
std::string layer_key(int64_t layer, const std::string& suffix);
// "model.layers.3." under `hf_model` = "model.".
std::string hf_layer_prefix(const std::string& hf_model, int64_t layer);

// torchtitan compute_ffn_hidden_dim(dim, multiple_of, ffn_dim_multiplier), for derive_fields.
int64_t compute_ffn_hidden_dim(int64_t dim, int64_t multiple_of, std::optional<double> multiplier);
// HF rope_scaling of torchtitan's "llama" RoPE scaling (llama3, llama4), null without it.
nlohmann::json hf_llama3_rope_scaling(const ModelConfig& config);

}  // namespace ckconv
