// Lookup and description helpers of the pickle value tree.
#include "formats/pickle/pickle_value.h"

namespace ckconv {

const PickleValue* PickleValue::find(std::string_view key) const {
  if (kind != PickleKind::kDict) return nullptr;
  for (const auto& [entry_key, entry_value] : entries)
    if (entry_key->kind == PickleKind::kString && entry_key->text == key) return entry_value;
  return nullptr;
}

std::string describe_pickle_value(const PickleValue& value) {
  auto quoted = [](const std::string& text) {
    return "'" + (text.size() > 60 ? text.substr(0, 60) + "..." : text) + "'";
  };
  switch (value.kind) {
    case PickleKind::kNone:
      return "None";
    case PickleKind::kBool:
      return value.bool_value ? "True" : "False";
    case PickleKind::kInt:
      return "int " + std::to_string(value.int_value);
    case PickleKind::kBigInt:
      return "int of " + std::to_string(value.text.size()) + " bytes";
    case PickleKind::kFloat:
      return "float " + std::to_string(value.float_value);
    case PickleKind::kString:
      return "str " + quoted(value.text);
    case PickleKind::kBytes:
      return "bytes of length " + std::to_string(value.text.size());
    case PickleKind::kTuple:
      return "tuple of " + std::to_string(value.items.size());
    case PickleKind::kList:
      return "list of " + std::to_string(value.items.size());
    case PickleKind::kDict:
      return "dict of " + std::to_string(value.entries.size());
    case PickleKind::kSet:
      return "set of " + std::to_string(value.items.size());
    case PickleKind::kGlobal:
      return "global " + value.text + "." + value.name;
    case PickleKind::kReduce:
    case PickleKind::kNewObj: {
      const PickleValue& callable = *value.items[0];
      // Not recursive: a callable may itself be the result of a long chain of calls.
      std::string target = callable.kind == PickleKind::kGlobal
                               ? callable.text + "." + callable.name
                               : "<computed callable>";
      return (value.kind == PickleKind::kReduce ? "call " : "object ") + target + "(...)";
    }
    case PickleKind::kPersistentId:
      return "persistent id";
  }
  return "value";
}

}  // namespace ckconv
