// The inert value tree a pickle decodes to (docs/formats.md "The restricted pickle reader").
// Nothing is executed or resolved: a class or function is a named Global, and calling it (REDUCE),
// instantiating it (NEWOBJ) or restoring its state (BUILD) is recorded, not performed. Callers
// interpret the records they expect (torch.save tensors, DCP metadata classes) and refuse
// everything else.
//
// All values of one pickle live in one PickleDocument and refer to each other by plain
// pointers. Pickles share objects through the memo (and may even build cycles), so shared
// ownership would leak cycles and destroy deep trees recursively; an arena does neither.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ckconv {

enum class PickleKind {
  kNone,
  kBool,
  kInt,     // fits in int64
  kBigInt,  // LONG1/LONG4 beyond int64: little-endian two's-complement bytes in `text`
  kFloat,
  kString,  // UTF-8 text (str)
  kBytes,   // bytes, also _codecs.encode(str, 'latin1') as protocol 2 pickles bytes
  kTuple,
  kList,
  kDict,  // insertion-ordered; also collections.OrderedDict() (then `ordered_dict`).
          // Duplicate keys are kept in `entries`; consumers refuse them where they matter.
  kSet,
  kGlobal,        // a class or function named `module`.`name`
  kReduce,        // call: items[0] = callable, items[1] = argument tuple
  kNewObj,        // cls.__new__(cls, *args): items[0] = class, items[1] = argument tuple
  kPersistentId,  // BINPERSID: items[0] = the persistent id value
};

struct PickleValue {
  PickleKind kind = PickleKind::kNone;
  bool bool_value = false;
  bool ordered_dict = false;  // kDict built as collections.OrderedDict()
  int64_t int_value = 0;
  double float_value = 0;
  std::string text;                       // kString, kBytes, kBigInt; kGlobal: module
  std::string name;                       // kGlobal: attribute name
  std::vector<const PickleValue*> items;  // kTuple, kList, kSet; record operands (see kinds)
  std::vector<std::pair<const PickleValue*, const PickleValue*>> entries;  // kDict
  // The state a BUILD opcode applied to this object (nullptr when none).
  const PickleValue* state = nullptr;

  bool is_none() const { return kind == PickleKind::kNone; }
  bool is_int() const { return kind == PickleKind::kInt; }
  bool is_string() const { return kind == PickleKind::kString; }
  bool is_tuple() const { return kind == PickleKind::kTuple; }
  bool is_dict() const { return kind == PickleKind::kDict; }
  bool is_global(std::string_view module, std::string_view attribute) const {
    return kind == PickleKind::kGlobal && text == module && name == attribute;
  }
  // The callable of a kReduce or the class of a kNewObj, when it is the named global.
  bool is_call_of(std::string_view module, std::string_view attribute) const {
    return (kind == PickleKind::kReduce || kind == PickleKind::kNewObj) &&
           items[0]->is_global(module, attribute);
  }
  const PickleValue& callable() const { return *items[0]; }
  const PickleValue& arguments() const { return *items[1]; }
  // kDict lookup by string key; nullptr when absent.
  const PickleValue* find(std::string_view key) const;
};

// A short human-readable form for error messages ("int 5", "str 'abc'", "global os.system",
// "call torch.Size(...)"), never recursing deeply.
std::string describe_pickle_value(const PickleValue& value);

// Owns every value of one decoded pickle.
class PickleDocument {
 public:
  const PickleValue& root() const { return *root_; }
  size_t value_count() const { return values_.size(); }

 private:
  friend class PickleMachine;
  PickleValue* make(PickleKind kind) {
    values_.push_back(std::make_unique<PickleValue>());
    values_.back()->kind = kind;
    return values_.back().get();
  }
  std::vector<std::unique_ptr<PickleValue>> values_;
  const PickleValue* root_ = nullptr;
};

}  // namespace ckconv
