#include "families/native_scheme.h"

#include <algorithm>
#include <map>
#include <regex>

#include "core/error.h"
#include "families/rule_builder.h"

namespace ckconv {
namespace {

// Canonical (2026-06) key -> the scheme's key: an ECMAScript regex and its replacement.
struct KeyRename {
  const char* pattern;
  const char* replacement;
};

// A layout the scheme stores differently from the canonical one: each rule of op `from` whose
// first native key (renamed into the scheme) matches `pattern` becomes op `to`, and its native
// tensors are stored x @ W, the last two dims swapped. With `one_expert`, the native tensor
// also gains a leading expert dim of 1 and HF keeps the canonical shape (rule.hf_shape).
struct LayoutChange {
  const char* pattern;
  RuleOp from;
  RuleOp to;
  bool one_expert = false;
};

// A persistent buffer the scheme saves beside the tensor of each rule matching `pattern`:
// the same shape, named by replacing the match with `replacement`, float32, with no HF counterpart
// (dropped on to_hf, zeros on from_hf).
struct AddedBuffer {
  const char* pattern;
  const char* replacement;
  const char* reason;
};

// One torchtitan generation (facts: docs/research/torchtitan_generations.md §0, §2, §7).
struct SchemeRow {
  NativeScheme scheme;
  const char* name;
  std::vector<std::string> families;
  bool saves_fused_qkv;  // a fused QKV parameter is saved as qkv_linear.wqkv
  bool has_mtp;
  // DeepSeek-V3's YaRN (RoPE frequencies and softmax mscale) applies only when max_seq_len
  // exceeds the original context (v0.2, 2026-06); otherwise whenever rope_factor > 1 (2026-08).
  bool yarn_beyond_original_context_only;
  std::vector<KeyRename> renames;
  std::vector<LayoutChange> layouts{};
  std::vector<AddedBuffer> buffers{};
  // Why a family torchtitan had then is not in `families` (said when it is asked for).
  std::vector<std::pair<std::string, std::string>> families_not_mapped{};
};

const std::vector<SchemeRow>& scheme_table() {
  static const std::vector<SchemeRow> rows = {
      // v0.1.0 (f7084fc78): models/llama3 and experiments/llama4; v0.2's names, but llama4's
      // GroupedExperts compute bmm(x, w) (w1/w3 [E, D, F], w2 [E, F, D]), its shared expert
      // is a one-expert GroupedExperts (`moe.shared_expert.w1` [1, D, F]) and MoE registers
      // tokens_per_expert as a persistent buffer.
      {NativeScheme::kV0_1,
       "v0.1",
       {"llama3", "llama4"},
       false,
       false,
       true,
       {
           {R"(^lm_head\.weight$)", "output.weight"},
           {R"(^(layers\.\d+\.attention\.)qkv_linear\.)", "$1"},
           {R"((\.moe\.experts\.w[123])_E[A-Z]+$)", "$1"},
           {R"((\.moe\.expert_bias)_E$)", "$1"},
           {R"((\.moe\.)shared_experts\.(w[123])\.weight$)", "$1shared_expert.$2"},
       },
       {
           {R"(\.moe\.experts\.w[13]$)", RuleOp::kConcatTransposed, RuleOp::kConcatColumns},
           {R"(\.moe\.experts\.w2$)", RuleOp::kTransposeLast2, RuleOp::kRename},
           {R"(\.moe\.shared_expert\.w[123]$)", RuleOp::kRename, RuleOp::kTransposeLast2, true},
       },
       {
           {R"(\.moe\.expert_bias$)", ".moe.tokens_per_expert",
            "torchtitan v0.1.0's per-expert token counts (a persistent buffer); HF has none"},
       },
       {
           {"deepseek_v3",
            "v0.1.0's deepseek_v3 is an experiment with HF's own key names that only loads HF "
            "safetensors and never saves a checkpoint: its weights are from-hf's input"},
       }},
      {NativeScheme::kV0_2,
       "v0.2",
       {"llama3", "llama4", "qwen3", "gpt_oss", "deepseek_v3"},
       false,
       false,
       true,
       {
           {R"(^lm_head\.weight$)", "output.weight"},
           {R"(^(layers\.\d+\.attention\.)qkv_linear\.)", "$1"},
           {R"((\.moe\.experts\.(w1|w2|w3|mlp1_weight|mlp1_bias|mlp2_weight|mlp2_bias))_E[A-Z]+$)",
            "$1"},
           {R"((\.moe\.expert_bias)_E$)", "$1"},
       }},
      {NativeScheme::k2026_06,
       "2026-06",
       {"llama3", "llama4", "qwen3", "gpt_oss", "deepseek_v3"},
       true,
       false,
       true,
       {}},
      {NativeScheme::k2026_08,
       "2026-08",
       {"llama3", "qwen3", "gpt_oss", "deepseek_v3"},
       false,
       true,
       false,
       {
           {R"(\.moe\.experts\.)", ".moe.routed_experts.inner_experts."},
       }},
  };
  return rows;
}

const SchemeRow& row_of(NativeScheme scheme) {
  for (const SchemeRow& row : scheme_table())
    if (row.scheme == scheme) return row;
  fail(ErrorKind::kInternal, "native scheme without a table row");
}

enum class Variant { kNone, kFusedQkv, kFusedSwiglu };

// A key that only some schemes save. detect_native_scheme intersects the schemes of every
// marker the key set holds.
struct SchemeMarker {
  const char* pattern;
  std::vector<NativeScheme> schemes;
  Variant variant = Variant::kNone;
};

const std::vector<SchemeMarker>& scheme_markers() {
  using enum NativeScheme;
  static const std::vector<SchemeMarker> markers = {
      {R"(^output\.weight$)", {kV0_1, kV0_2}},
      {R"(^lm_head\.weight$)", {k2026_06, k2026_08}},
      // deepseek_v3's attention.wq (MLA) never moved: only wk/wv tell v0.2's GQA names.
      {R"(\.attention\.w[kv]\.(weight|bias)$)", {kV0_1, kV0_2}},
      {R"(\.attention\.qkv_linear\.w[qkv]\.)", {k2026_06, k2026_08}},
      {R"(\.attention\.qkv_linear\.wqkv\.)", {k2026_06}, Variant::kFusedQkv},
      {R"(\.moe\.experts\.w[123]$)", {kV0_1, kV0_2}},
      {R"(\.moe\.experts\.mlp[12]_(weight|bias)$)", {kV0_2}},
      {R"(\.moe\.expert_bias$)", {kV0_1, kV0_2}},
      {R"(\.moe\.(shared_expert\.w[123]|tokens_per_expert)$)", {kV0_1}},
      {R"(\.moe\.expert_bias_E$)", {k2026_06, k2026_08}},
      {R"(\.moe\.experts\.(w[123]_E[A-Z]+|mlp[12]_(weight|bias)_E[A-Z]+|w13)$)", {k2026_06}},
      {R"(\.moe\.routed_experts\.inner_experts\.)", {k2026_08}},
      {R"(^mtp_layers\.)", {k2026_08}},
      {R"(\.w13(\.weight)?$)", {k2026_06, k2026_08}, Variant::kFusedSwiglu},
  };
  return markers;
}

std::string scheme_list(const std::vector<NativeScheme>& schemes) {
  std::string text;
  for (NativeScheme scheme : schemes)
    text += (text.empty() ? "" : ", ") + native_scheme_name(scheme);
  return text;
}

// Renames every native key of `table` by the scheme's table.
void rename_native_keys(const SchemeRow& row, FamilyRules& table) {
  if (row.renames.empty()) return;
  std::vector<std::pair<std::regex, std::string>> renames;
  for (const KeyRename& rename : row.renames)
    renames.emplace_back(rename.pattern, rename.replacement);
  auto renamed = [&](std::string key) {
    for (const auto& [pattern, replacement] : renames)
      key = std::regex_replace(key, pattern, replacement);
    return key;
  };
  for (Rule& rule : table.rules)
    for (NativeTensor& tensor : rule.native) tensor.name = renamed(tensor.name);
  for (std::string& name : table.native_order) name = renamed(name);
}

// Applies the scheme's layout changes to the (renamed) rules of `table`.
void change_layouts(const SchemeRow& row, FamilyRules& table) {
  for (const LayoutChange& change : row.layouts) {
    const std::regex pattern(change.pattern);
    for (Rule& rule : table.rules) {
      if (rule.op != change.from || rule.native.empty() ||
          !std::regex_search(rule.native[0].name, pattern))
        continue;
      rule.op = change.to;
      for (NativeTensor& tensor : rule.native) {
        if (change.one_expert) rule.hf_shape = tensor.shape;
        std::swap(tensor.shape[tensor.shape.size() - 2], tensor.shape.back());
        if (change.one_expert) tensor.shape.insert(tensor.shape.begin(), 1);
      }
    }
  }
}

// Adds the scheme's extra buffers, each right after the tensor it accompanies.
void add_buffers(const SchemeRow& row, FamilyRules& table) {
  for (const AddedBuffer& buffer : row.buffers) {
    const std::regex pattern(buffer.pattern);
    std::vector<Rule> rules;
    std::map<std::string, std::string> after;
    for (const Rule& rule : table.rules) {
      rules.push_back(rule);
      if (rule.native.empty() || !std::regex_search(rule.native[0].name, pattern)) continue;
      NativeTensor added = rule.native[0];
      added.name = std::regex_replace(added.name, pattern, buffer.replacement);
      added.float32_only = true;
      Rule zeros{RuleOp::kDroppedZeros, {added}, {}};
      zeros.reason = buffer.reason;
      rules.push_back(std::move(zeros));
      after[rule.native[0].name] = added.name;
    }
    table.rules = std::move(rules);
    std::vector<std::string> order;
    for (const std::string& name : table.native_order) {
      order.push_back(name);
      if (auto found = after.find(name); found != after.end()) order.push_back(found->second);
    }
    table.native_order = std::move(order);
  }
}

// The w13 name of a SwiGLU w1 rule (rename of `P.w1.weight`, or expert unstack of
// `P.w1_EFD`), with the name of its w3 partner; empty when the rule is no such w1.
std::pair<std::string, std::string> swiglu_pair_names(const Rule& rule) {
  const std::string& name = rule.native[0].name;
  auto ends_with = [&](const std::string& suffix) {
    return name.size() > suffix.size() &&
           name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (rule.op == RuleOp::kRename && ends_with(".w1.weight")) {
    const std::string prefix = name.substr(0, name.size() - 10);
    return {prefix + ".w13.weight", prefix + ".w3.weight"};
  }
  if (rule.op == RuleOp::kUnstackExperts && ends_with(".w1_EFD")) {
    const std::string prefix = name.substr(0, name.size() - 7);
    return {prefix + ".w13", prefix + ".w3_EFD"};
  }
  return {};
}

// Replaces each w1/w3 rule pair whose w13 name is in `fused` by one fused-SwiGLU rule, in the
// place of w1 (torchtitan registers w13 where w1 was).
void fuse_swiglu_pairs(const std::set<std::string>& fused, FamilyRules& table) {
  if (fused.empty()) return;
  std::map<std::string, size_t> rule_of;
  for (size_t r = 0; r < table.rules.size(); ++r)
    if (!table.rules[r].native.empty()) rule_of[table.rules[r].native[0].name] = r;
  std::set<size_t> removed;
  std::map<std::string, std::string> order_renames;
  for (Rule& rule : table.rules) {
    if (rule.native.empty()) continue;
    const auto [w13, w3] = swiglu_pair_names(rule);
    if (w13.empty() || !fused.count(w13) || !rule_of.count(w3)) continue;
    const Rule& partner = table.rules[rule_of.at(w3)];
    if (partner.op != rule.op || partner.native[0].shape != rule.native[0].shape) continue;
    Shape pair = rule.native[0].shape;  // [..., F, D] -> [..., F, 2, D]
    pair.insert(pair.end() - 1, 2);
    Rule merged{RuleOp::kFusedSwiglu, {{w13, pair, rule.native[0].float32_only}}, rule.hf};
    merged.hf.insert(merged.hf.end(), partner.hf.begin(), partner.hf.end());
    order_renames[rule.native[0].name] = w13;
    order_renames[w3] = "";
    removed.insert(rule_of.at(w3));
    rule = std::move(merged);
  }
  std::vector<Rule> rules;
  for (size_t r = 0; r < table.rules.size(); ++r)
    if (!removed.count(r)) rules.push_back(std::move(table.rules[r]));
  table.rules = std::move(rules);
  std::vector<std::string> order;
  for (const std::string& name : table.native_order) {
    auto found = order_renames.find(name);
    if (found == order_renames.end())
      order.push_back(name);
    else if (!found->second.empty())
      order.push_back(found->second);
  }
  table.native_order = std::move(order);
}

}  // namespace

std::string native_scheme_name(NativeScheme scheme) {
  return row_of(scheme).name;
}

NativeScheme parse_native_scheme(const std::string& name) {
  for (const SchemeRow& row : scheme_table())
    if (name == row.name) return row.scheme;
  fail(ErrorKind::kUsage,
       "unknown native scheme '" + name + "'; known: " + scheme_list(all_native_schemes()));
}

const std::vector<NativeScheme>& all_native_schemes() {
  static const std::vector<NativeScheme> schemes = [] {
    std::vector<NativeScheme> out;
    for (const SchemeRow& row : scheme_table()) out.push_back(row.scheme);
    return out;
  }();
  return schemes;
}

bool scheme_has_family(NativeScheme scheme, const std::string& family) {
  const std::vector<std::string>& families = row_of(scheme).families;
  return std::find(families.begin(), families.end(), family) != families.end();
}

bool scheme_has_mtp(NativeScheme scheme) {
  return row_of(scheme).has_mtp;
}

NativeScheme newest_scheme_for(const std::string& family) {
  const std::vector<NativeScheme>& schemes = all_native_schemes();
  for (auto scheme = schemes.rbegin(); scheme != schemes.rend(); ++scheme)
    if (scheme_has_family(*scheme, family)) return *scheme;
  fail(ErrorKind::kUsage, "no torchtitan native scheme has the family '" + family + "'");
}

SchemeDetection detect_native_scheme(const std::vector<std::string>& keys) {
  const std::vector<SchemeMarker>& markers = scheme_markers();
  std::vector<std::regex> patterns;
  for (const SchemeMarker& marker : markers) patterns.emplace_back(marker.pattern);
  SchemeDetection detection;
  std::vector<const std::string*> example(markers.size(), nullptr);
  for (const std::string& key : keys)
    for (size_t m = 0; m < markers.size(); ++m) {
      if (!std::regex_search(key, patterns[m])) continue;
      if (!example[m]) example[m] = &key;
      if (markers[m].variant == Variant::kFusedQkv) detection.fused_qkv = true;
      if (markers[m].variant == Variant::kFusedSwiglu) detection.fused_swiglu_keys.insert(key);
    }
  std::vector<NativeScheme> candidates = all_native_schemes();
  std::string found;
  for (size_t m = 0; m < markers.size(); ++m) {
    if (!example[m]) continue;
    detection.deciding_keys.push_back(*example[m]);
    found += "\n    " + *example[m] + " (" + scheme_list(markers[m].schemes) + ")";
    std::erase_if(candidates, [&](NativeScheme scheme) {
      return std::find(markers[m].schemes.begin(), markers[m].schemes.end(), scheme) ==
             markers[m].schemes.end();
    });
  }
  if (detection.deciding_keys.empty()) {
    std::string looked_for;
    for (const SchemeMarker& marker : markers)
      looked_for +=
          "\n    " + std::string(marker.pattern) + " (" + scheme_list(marker.schemes) + ")";
    fail_input("no key tells which torchtitan generation wrote this checkpoint; looked for:" +
               looked_for + "\n  (--native-scheme NAME names it)");
  }
  if (candidates.empty())
    fail_input("the keys mix torchtitan generations; no native scheme has all of:" + found +
               "\n  (--native-scheme NAME reads it as one scheme and lists what does not fit)");
  detection.candidates = std::move(candidates);
  return detection;
}

NativeLayout reading_layout(const SchemeDetection& detection, const std::string& family,
                            const NativeScheme* forced) {
  NativeLayout layout;
  layout.fused_qkv = detection.fused_qkv;
  layout.fused_swiglu_keys = detection.fused_swiglu_keys;
  if (forced) {
    layout.scheme = *forced;
    return layout;
  }
  for (auto scheme = detection.candidates.rbegin(); scheme != detection.candidates.rend(); ++scheme)
    if (scheme_has_family(*scheme, family)) {
      layout.scheme = *scheme;
      return layout;
    }
  fail_input("the keys are those of torchtitan " + scheme_list(detection.candidates) +
             ", which has no " + family + " model (" + family + " exists in: " +
             [&] {
               std::vector<NativeScheme> with;
               for (NativeScheme scheme : all_native_schemes())
                 if (scheme_has_family(scheme, family)) with.push_back(scheme);
               return scheme_list(with);
             }() +
             ")");
}

NativeLayout writing_layout(NativeScheme scheme, const ModelConfig& config) {
  NativeLayout layout;
  layout.scheme = scheme;
  layout.fused_qkv =
      row_of(scheme).saves_fused_qkv && config.has("fused_qkv") && config.get_bool("fused_qkv");
  return layout;
}

std::string native_layout_description(const NativeLayout& layout) {
  std::string variants;
  if (layout.fused_qkv) variants += "wqkv";
  if (!layout.fused_swiglu_keys.empty())
    variants += std::string(variants.empty() ? "" : ", ") + "w13";
  const std::string name = native_scheme_name(layout.scheme);
  return variants.empty() ? name : name + " (" + variants + ")";
}

FamilyRules build_native_rules(const ModelConfig& config, const NativeLayout& layout) {
  const SchemeRow& row = row_of(layout.scheme);
  if (!scheme_has_family(layout.scheme, config.family())) {
    std::vector<NativeScheme> with;
    for (NativeScheme scheme : all_native_schemes())
      if (scheme_has_family(scheme, config.family())) with.push_back(scheme);
    std::string why;
    for (const auto& [family, reason] : row.families_not_mapped)
      if (family == config.family()) why = " (" + reason + ")";
    fail(ErrorKind::kUsage, "torchtitan " + std::string(row.name) + " has no " + config.family() +
                                " model" + why + "; native schemes with it: " + scheme_list(with));
  }
  ModelConfig scheme_config = config;
  if (scheme_config.has("fused_qkv")) scheme_config.set("fused_qkv", layout.fused_qkv);
  if (!row.has_mtp && scheme_config.has("num_mtp_layers")) scheme_config.set("num_mtp_layers", 0);
  FamilyRules table = build_family_rules(scheme_config);
  rename_native_keys(row, table);
  change_layouts(row, table);
  add_buffers(row, table);
  fuse_swiglu_pairs(layout.fused_swiglu_keys, table);
  // config.json describes what the native model computes, and transformers applies whatever
  // rope_scaling it names: where this generation's DeepSeek-V3 runs plain RoPE, none.
  if (config.family() == "deepseek_v3" && row.yarn_beyond_original_context_only &&
      config.get_int("max_seq_len") <= config.get_int("rope_original_seq_len"))
    table.hf_config.erase("rope_scaling");
  return table;
}

}  // namespace ckconv
