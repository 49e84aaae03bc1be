// The model of a native checkpoint resolved from what its keys and shapes show
// (families/native_detection.h), and the record of where every config field came from.
#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "families/model_resolution.h"

namespace ckconv {
namespace {

std::optional<int64_t> overridden_int(const ModelRequest& request, const std::string& field) {
  for (auto item = request.overrides.rbegin(); item != request.overrides.rend(); ++item)
    if (item->field == field) {
      const nlohmann::json value = nlohmann::json::parse(item->value, nullptr, false);
      if (value.is_number_integer()) return value.get<int64_t>();
    }
  return std::nullopt;
}

std::string join_numbers(const std::vector<int64_t>& numbers) {
  std::string out;
  for (int64_t number : numbers) out += (out.empty() ? "" : ", ") + std::to_string(number);
  return out;
}

// The detected fields whose value `config` does not have.
std::vector<std::string> differing_fields(const DetectedModel& detected,
                                          const ModelConfig& config) {
  std::vector<std::string> fields;
  for (const auto& field : detected.fields.items())
    if (!config.has(field.key()) || !same_field_value(config.fields()[field.key()], field.value()))
      fields.push_back(field.key());
  return fields;
}

// How far a flavor is from the checkpoint: the differing fields, each counting 1 plus its
// relative difference (|a - b| / max(a, b)) when both are numbers, so that among flavors
// differing in as many fields the one of the nearest sizes wins.
double distance(const DetectedModel& detected, const ModelConfig& candidate,
                const std::vector<std::string>& differing) {
  double total = 0;
  for (const std::string& field : differing) {
    total += 1;
    const nlohmann::json& mine = detected.fields[field];
    const nlohmann::json theirs = candidate.fields().value(field, nlohmann::json());
    if (mine.is_number() && theirs.is_number()) {
      const double a = mine.get<double>(), b = theirs.get<double>();
      if (std::max(a, b) > 0) total += std::abs(a - b) / std::max(a, b);
    }
  }
  return total;
}

struct FlavorDifference {
  std::string flavor;
  std::vector<std::string> fields;  // the detected fields the flavor has other values of
  double distance = 0;
};

// The built-in flavors, each with the detected fields it differs in (with the overrides);
// flavors the overrides do not fit are left out.
std::vector<FlavorDifference> flavor_differences(const Family& family,
                                                 const nlohmann::json& document,
                                                 const std::vector<Override>& overrides,
                                                 const DetectedModel& detected) {
  std::vector<FlavorDifference> out;
  for (const auto& item : document["flavors"].items()) {
    try {
      const ModelConfig candidate = load_family_config(family, document, item.key(), overrides);
      std::vector<std::string> fields = differing_fields(detected, candidate);
      const double far = distance(detected, candidate, fields);
      out.push_back({item.key(), std::move(fields), far});
    } catch (const Error&) {
      continue;  // the overrides do not fit this flavor
    }
  }
  return out;
}

std::vector<std::string> matching_flavors(const Family& family, const nlohmann::json& document,
                                          const ModelRequest& request,
                                          const DetectedModel& detected) {
  std::vector<std::string> matches;
  for (const FlavorDifference& item :
       flavor_differences(family, document, request.overrides, detected))
    if (item.fields.empty()) matches.push_back(item.flavor);
  return matches;
}

// The detected fields plus the head split: from --set n_heads, else the only one possible.
nlohmann::json fields_with_heads(const ModelRequest& request, const DetectedModel& detected) {
  nlohmann::json fields = detected.fields;
  if (fields.contains("n_heads")) return fields;
  const std::string candidates = join_numbers(detected.head_candidates);
  if (std::optional<int64_t> wanted = overridden_int(request, "n_heads")) {
    std::optional<nlohmann::json> heads = head_fields(detected, *wanted);
    if (!heads)
      fail_input("--set n_heads=" + std::to_string(*wanted) + " does not split the checkpoint's " +
                 "attention (" + describe_detected(detected) +
                 "); n_heads values that fit: " + candidates);
    fields.update(*heads);
    return fields;
  }
  if (detected.head_candidates.size() == 1) {
    fields.update(*head_fields(detected, detected.head_candidates.front()));
    return fields;
  }
  fail(ErrorKind::kUsage,
       "n_heads cannot be read from the checkpoint's shapes (" + describe_detected(detected) +
           ") and changes the converted bytes; it could be any of " +
           (candidates.empty() ? std::string("(none)") : candidates) +
           ". Name it: --set n_heads=N, --flavor FLAVOR, or --hf-config config.json");
}

// The --set that makes the flavor's head count split the checkpoint's attention widths,
// when the shapes do not show the head count.
std::string heads_fix(const DetectedModel& detected, const ModelConfig& config) {
  if (detected.fields.contains("n_heads") || !config.has("n_heads") || detected.q_width <= 0)
    return "";
  const std::optional<nlohmann::json> heads = head_fields(detected, config.get_int("n_heads"));
  if (!heads) return " --set n_heads=N (N one of " + join_numbers(detected.head_candidates) + ")";
  std::string sets;
  for (const char* field : {"n_kv_heads", "head_dim"})
    if (!config.has(field) || !same_field_value(config.fields()[field], (*heads)[field]))
      sets += std::string(" --set ") + field + "=" + (*heads)[field].dump();
  return sets;
}

// Without one fitting flavor, the fields shapes cannot show (top_k, rope_theta, eps, ...) are
// the family's defaults: said out loud, since config.json carries them.
void warn_default_fields(ResolvedModel& model) {
  std::string guessed;
  for (const auto& item : model.field_sources.items())
    if (item.value() == "defaults")
      guessed += (guessed.empty() ? "" : ", ") + item.key() + " " +
                 model.config.fields()[item.key()].dump();
  if (guessed.empty()) return;
  model.warnings.push_back(
      "no built-in flavor has these shapes, so these fields are the family's defaults, not read "
      "from the checkpoint: " +
      guessed + " (--hf-config FILE or --set FIELD=VALUE gives the real ones)");
}

}  // namespace

ResolvedModel resolve_detected(const ModelRequest& request, const DetectedModel& detected) {
  if (!request.family.empty() && request.family != detected.family)
    fail_input("the checkpoint's keys are those of " + describe_detected(detected) +
               ", but --model is " + request.family);
  const Family& family = find_family(detected.family);
  nlohmann::json document = load_family_document(family.name, request.config_file);
  ResolvedModel model;
  model.source = "detected";
  model.heads_confirmed = detected.fields.contains("n_heads");
  const std::vector<std::string> matches = matching_flavors(family, document, request, detected);
  std::string flavor;
  nlohmann::json shown = detected.fields;
  if (matches.size() == 1) {
    flavor = matches.front();
    model.config = load_family_config(family, document, flavor, request.overrides);
    model.equals = family.name + "/" + flavor;
    model.notes.push_back("the checkpoint's shapes fit one built-in flavor: using " +
                          *model.equals + " (" +
                          describe_detected(detected, model.config.fields()) + ")");
  } else {
    shown = fields_with_heads(request, detected);
    model.heads_confirmed =
        detected.fields.contains("n_heads") || detected.head_candidates.size() == 1;
    document["flavors"]["detected"] = shown;
    model.config = load_family_config(family, document, "detected", request.overrides);
    model.notes.push_back("detected " + describe_detected(detected, model.config.fields()) +
                          (matches.empty() ? "; no built-in flavor has these shapes"
                                           : "; several built-in flavors fit"));
  }
  record_field_sources(model, request, document, flavor, nlohmann::json::object(), shown);
  if (matches.size() != 1) warn_default_fields(model);
  return model;
}

std::vector<std::string> flavors_matching(const DetectedModel& detected,
                                          const std::vector<Override>& overrides) {
  ModelRequest request;
  request.overrides = overrides;
  const Family& family = find_family(detected.family);
  return matching_flavors(family, load_family_document(family.name), request, detected);
}

std::string mismatch_guidance(const DetectedModel& detected, const ModelConfig& config) {
  const std::vector<std::string> differing = differing_fields(detected, config);
  if (differing.empty()) {
    const std::string sets = heads_fix(detected, config);
    if (sets.empty()) return "";
    return "\n  the checkpoint looks like " + describe_detected(detected) +
           "; its attention does not split into the flavor's heads: add" + sets;
  }
  std::string text = "\n  the checkpoint looks like " + describe_detected(detected);
  std::string fields, sets;
  for (const std::string& field : differing) {
    const nlohmann::json value = detected.fields[field];
    fields += (fields.empty() ? "" : ", ") + field + " " + value.dump() + " (not " +
              (config.has(field) ? config.fields()[field].dump() : std::string("set")) + ")";
    sets += " --set " + field + "=" + value.dump();
  }
  text += "\n  it differs from " + config.family() + "/" + config.flavor() + " in " + fields;
  sets += heads_fix(detected, config);
  const Family& family = find_family(detected.family);
  std::string nearest;
  double nearest_distance = 0;
  for (const FlavorDifference& item :
       flavor_differences(family, load_family_document(family.name), {}, detected)) {
    if (item.fields.empty())
      return text + "\n  this is " + family.name + "/" + item.flavor + ": use --flavor " +
             item.flavor + " (or omit --model and --flavor)";
    if (nearest.empty() || item.distance < nearest_distance) {
      nearest = item.flavor;
      nearest_distance = item.distance;
    }
  }
  text += "\n  no built-in flavor has these shapes (nearest: " + family.name + "/" + nearest +
          "); convert with the checkpoint's shapes by omitting --flavor" +
          (detected.fields.contains("n_heads") ? std::string() : " and giving --set n_heads=N") +
          ", or keep --flavor " + config.flavor() + " and add" + sets;
  return text;
}

void record_field_sources(ResolvedModel& model, const ModelRequest& request,
                          const nlohmann::json& document, const std::string& flavor,
                          const nlohmann::json& json_fields,
                          const nlohmann::json& detected_fields) {
  const nlohmann::json flavor_fields =
      flavor.empty() ? nlohmann::json::object()
                     : document["flavors"].value(flavor, nlohmann::json::object());
  const nlohmann::json defaults = document.value("defaults", nlohmann::json::object());
  for (const auto& item : model.config.fields().items()) {
    const std::string& field = item.key();
    std::string source = "defaults";
    if (std::any_of(request.overrides.begin(), request.overrides.end(),
                    [&](const Override& o) { return o.field == field; }))
      source = "--set";
    else if (detected_fields.contains(field))
      source = "detected";
    else if (json_fields.contains(field))
      source = "config.json";
    else if (flavor_fields.contains(field))
      source = flavor == request.flavor && !request.flavor_origin.empty() ? request.flavor_origin
                                                                          : "flavor " + flavor;
    else if (defaults.contains(field) && defaults[field].is_null() && !item.value().is_null())
      source = "derived";
    model.field_sources[field] = source;
  }
}

}  // namespace ckconv
