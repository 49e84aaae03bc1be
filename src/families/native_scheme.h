// torchtitan's native key schemes ("generations"): the names under which each torchtitan
// generation saves the same model. Every family's rule table is written once, in the
// canonical scheme (2026-06, names as the rule files spell them); a scheme is a renaming
// table over those names plus the layouts it saves (fused QKV as one `wqkv`, fused SwiGLU as
// one interleaved `w13`, v0.1's x @ W experts and one-expert shared expert, each another op
// of the same rule algebra) and the buffers only it persists (v0.1's tokens_per_expert),
// applied to the canonical rule table. Adding torchtitan's next
// rename is one row of the scheme table in native_scheme.cpp. Reading detects the scheme
// from the checkpoint's key set (detect_native_scheme); writing uses a named one.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "families/family.h"
#include "model/model_config.h"

namespace ckconv {

enum class NativeScheme {
  kV0_1,     // torchtitan v0.1.0 (2025-06): v0.2's names; llama4 experts stored x @ W ([E, D, F]),
             // one-expert shared_expert [1, D, F], persistent tokens_per_expert
  kV0_2,     // torchtitan v0.2.0 - v0.2.2 (2025-10 .. 2026-02): output.weight, attention.wq, ...
  k2026_06,  // torchtitan main 2026-05-27 .. 2026-07-16: lm_head, qkv_linear, experts.w1_EFD
  k2026_08,  // torchtitan main from 2026-07-16 (b5bcd76c6): routed_experts.inner_experts, MTP
};

// "v0.1", "v0.2", "2026-06", "2026-08".
std::string native_scheme_name(NativeScheme scheme);
// The scheme named `name`; kUsage listing the names otherwise.
NativeScheme parse_native_scheme(const std::string& name);
// Every scheme, oldest first.
const std::vector<NativeScheme>& all_native_schemes();
// Whether torchtitan of that generation has `family` in a form ckconv maps (v0.1.0 has llama3
// and llama4 only: its deepseek_v3 experiment is HF-named and never saves a checkpoint; llama4
// ends with 2026-06; gpt_oss as v0.2 means v0.2.2's models/gpt_oss, with the router bias).
bool scheme_has_family(NativeScheme scheme, const std::string& family);
// Whether the scheme saves DeepSeek-V3 multi-token-prediction layers (mtp_layers.{j}.*).
bool scheme_has_mtp(NativeScheme scheme);
// The newest scheme that has `family` (what from-hf and init write by default).
NativeScheme newest_scheme_for(const std::string& family);

// A scheme and the layout variants of one checkpoint in it.
struct NativeLayout {
  NativeScheme scheme = NativeScheme::k2026_06;
  // Fused QKV saved as one qkv_linear.wqkv (2026-06 until 2026-06-18); families without a
  // fused_qkv field ignore it.
  bool fused_qkv = false;
  // Fused SwiGLU pairs saved as one interleaved w13 ([F, 2, D], experts [E, F, 2, D]), by
  // their names in the scheme: each pair whose w13 name is listed is fused.
  std::set<std::string> fused_swiglu_keys;
};

// What the key set of a native checkpoint says about its scheme.
struct SchemeDetection {
  std::vector<NativeScheme> candidates;     // schemes the key set fits, oldest first (never empty)
  bool fused_qkv = false;                   // a qkv_linear.wqkv key is present
  std::set<std::string> fused_swiglu_keys;  // the w13 keys present
  // One key per distinguishing marker found (e.g. lm_head.weight, ...moe.experts.w1_EFD).
  std::vector<std::string> deciding_keys;
};

// The scheme(s) `keys` (a native checkpoint's tensor names, model keys only) fit. A key set
// holding markers of schemes with nothing in common (mixed generations) is kBadInput naming
// one key of each marker and the schemes it belongs to; a key set with no marker at all is
// kBadInput listing the markers looked for.
SchemeDetection detect_native_scheme(const std::vector<std::string>& keys);

// The layout to read a checkpoint of `family` with: `forced` when given, else the newest
// candidate of `detection` that has the family (kBadInput when none has it). The variants
// always come from the key set.
NativeLayout reading_layout(const SchemeDetection& detection, const std::string& family,
                            const NativeScheme* forced);
// The layout from-hf and init write in `scheme`: fused QKV only where the scheme saves it
// and the flavor is fused.
NativeLayout writing_layout(NativeScheme scheme, const ModelConfig& config);
// "2026-06", "2026-06 (wqkv, w13)".
std::string native_layout_description(const NativeLayout& layout);

// `config`'s rule table in `layout`: the canonical table of its family, built on a copy of
// the config whose fused_qkv follows the layout and whose num_mtp_layers is 0 where the
// scheme has no MTP, then renamed by the scheme's table and with the listed w13 pairs fused.
// kUsage when the scheme has no such family.
FamilyRules build_native_rules(const ModelConfig& config, const NativeLayout& layout);

}  // namespace ckconv
