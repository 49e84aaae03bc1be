// The pickle machine's stack, memo and values (pickle_machine.h): where the limits of
// pickle_reader.h on stack size, values, containers, strings and integers are enforced, and
// where REDUCE turns a few container constructors into plain containers.
#include <cstdint>
#include <string>

#include "core/error.h"
#include "formats/pickle/pickle_machine.h"
#include "formats/pickle/pickle_reader.h"

namespace ckconv {
namespace {

// Valid UTF-8, allowing encoded surrogates as Python's pickle ('surrogatepass') does.
bool is_utf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    auto lead = static_cast<uint8_t>(text[i]);
    if (lead < 0x80) {
      ++i;
      continue;
    }
    size_t length = 0;
    uint32_t code_point = 0;
    uint32_t smallest = 0;  // overlong encodings are invalid
    if ((lead & 0xe0) == 0xc0) {
      length = 2, code_point = lead & 0x1fu, smallest = 0x80;
    } else if ((lead & 0xf0) == 0xe0) {
      length = 3, code_point = lead & 0x0fu, smallest = 0x800;
    } else if ((lead & 0xf8) == 0xf0) {
      length = 4, code_point = lead & 0x07u, smallest = 0x10000;
    } else {
      return false;
    }
    if (length > text.size() - i) return false;
    for (size_t k = 1; k < length; ++k) {
      auto continuation = static_cast<uint8_t>(text[i + k]);
      if ((continuation & 0xc0) != 0x80) return false;
      code_point = (code_point << 6) | (continuation & 0x3fu);
    }
    if (code_point < smallest || code_point > 0x10ffff) return false;
    i += length;
  }
  return true;
}

}  // namespace

void PickleMachine::push(const PickleValue* value) {
  if (stack_.size() >= kMaxPickleStackSize)
    fail("stack exceeds the limit of " + std::to_string(kMaxPickleStackSize) + " values");
  stack_.push_back(value);
}

PickleValue* PickleMachine::make(PickleKind kind) {
  if (document_.value_count() >= max_values_)
    fail("more than the limit of " + std::to_string(max_values_) + " values");
  return document_.make(kind);
}

const PickleValue* PickleMachine::pop() {
  if (stack_.size() <= frame_start()) fail("stack underflow");
  const PickleValue* value = stack_.back();
  stack_.pop_back();
  return value;
}

const PickleValue* PickleMachine::top() const {
  if (stack_.size() <= frame_start()) fail("stack underflow");
  return stack_.back();
}

// Values above the most recent MARK, which is removed.
std::vector<const PickleValue*> PickleMachine::pop_to_mark() {
  if (marks_.empty()) fail("no MARK to pop to");
  size_t start = marks_.back();
  marks_.pop_back();
  std::vector<const PickleValue*> items(stack_.begin() + static_cast<std::ptrdiff_t>(start),
                                        stack_.end());
  stack_.resize(start);
  return items;
}

PickleValue* PickleMachine::container_on_top(PickleKind kind, const char* opcode) {
  const PickleValue* target = top();
  if (target->kind != kind)
    fail(std::string(opcode) + " on " + describe_pickle_value(*target) + ", expected a " +
         (kind == PickleKind::kList   ? "list"
          : kind == PickleKind::kDict ? "dict"
                                      : "set"));
  return mutable_value(target);
}

void PickleMachine::check_capacity(const PickleValue* container, size_t adding) const {
  size_t count =
      container->kind == PickleKind::kDict ? container->entries.size() : container->items.size();
  if (adding > kMaxPickleContainerItems - count)
    fail("container exceeds the limit of " + std::to_string(kMaxPickleContainerItems) + " items");
}

void PickleMachine::set_item(PickleValue* dict, const PickleValue* key, const PickleValue* value) {
  check_capacity(dict, 1);
  dict->entries.emplace_back(key, value);
}

void PickleMachine::push_int(int64_t value) {
  PickleValue* v = make(PickleKind::kInt);
  v->int_value = value;
  push(v);
}

void PickleMachine::push_string(std::string_view bytes) {
  if (!is_utf8(bytes)) fail("str value is not valid UTF-8");
  PickleValue* v = make(PickleKind::kString);
  v->text.assign(bytes);
  push(v);
}

void PickleMachine::push_bytes(std::string_view bytes) {
  PickleValue* v = make(PickleKind::kBytes);
  v->text.assign(bytes);
  push(v);
}

// LONG1/LONG4: little-endian two's complement.
void PickleMachine::push_long(std::string_view bytes) {
  if (bytes.size() > kMaxPickleBigIntBytes)
    fail("integer of " + std::to_string(bytes.size()) + " bytes exceeds the limit of " +
         std::to_string(kMaxPickleBigIntBytes));
  if (bytes.empty()) return push_int(0);
  bool negative = (static_cast<uint8_t>(bytes.back()) & 0x80) != 0;
  // Drop sign-extension bytes beyond the 8 an int64 holds, when they are redundant.
  size_t significant = bytes.size();
  uint8_t fill = negative ? 0xff : 0x00;
  while (significant > 8 && static_cast<uint8_t>(bytes[significant - 1]) == fill &&
         ((static_cast<uint8_t>(bytes[significant - 2]) & 0x80) != 0) == negative)
    --significant;
  if (significant > 8) {
    PickleValue* v = make(PickleKind::kBigInt);
    v->text.assign(bytes);
    return push(v);
  }
  uint64_t value = negative ? ~uint64_t{0} : 0;
  for (size_t i = 0; i < significant; ++i) {
    value &= ~(uint64_t{0xff} << (8 * i));
    value |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[i])) << (8 * i);
  }
  push_int(static_cast<int64_t>(value));
}

void PickleMachine::push_global(std::string_view module, std::string_view name) {
  if (!is_allowed_pickle_global(module, name))
    fail("refusing global " + std::string(module) + "." + std::string(name) +
         ": not a class or function that torch checkpoints use (nothing is executed)");
  PickleValue* v = make(PickleKind::kGlobal);
  v->text.assign(module);
  v->name.assign(name);
  push(v);
}

void PickleMachine::push_tuple(std::vector<const PickleValue*> items) {
  PickleValue* v = make(PickleKind::kTuple);
  v->items = std::move(items);
  push(v);
}

void PickleMachine::memo_put(uint64_t index) {
  const PickleValue* value = top();
  auto found = memo_.find(index);
  if (found == memo_.end() && memo_.size() >= kMaxPickleMemoEntries)
    fail("memo exceeds the limit of " + std::to_string(kMaxPickleMemoEntries) + " entries");
  memo_[index] = value;
}

void PickleMachine::memo_get(uint64_t index) {
  auto found = memo_.find(index);
  if (found == memo_.end()) fail("memo index " + std::to_string(index) + " was never stored");
  push(found->second);
}

// REDUCE: a few container constructors become plain containers, so SETITEM(S)/APPEND on an
// OrderedDict and protocol-2 bytes/sets read like their protocol-4 forms. Anything else is
// recorded as a call.
void PickleMachine::reduce() {
  const PickleValue* arguments = pop();
  const PickleValue* callable = pop();
  if (arguments->kind != PickleKind::kTuple)
    fail("REDUCE arguments are " + describe_pickle_value(*arguments) + ", expected a tuple");
  const auto& args = arguments->items;
  if (callable->is_global("collections", "OrderedDict") && args.empty()) {
    PickleValue* dict = make(PickleKind::kDict);
    dict->ordered_dict = true;
    return push(dict);
  }
  if (callable->is_global("builtins", "set") && args.size() == 1 &&
      args[0]->kind == PickleKind::kList) {
    // The one opcode that copies a container: 8 bytes can repeat it on one big list, so a
    // small pickle could ask for gigabytes. All copies share one budget.
    if (args[0]->items.size() > kMaxPickleContainerItems - copied_items_)
      fail("builtins.set() copies exceed the limit of " + std::to_string(kMaxPickleContainerItems) +
           " items");
    copied_items_ += args[0]->items.size();
    PickleValue* set = make(PickleKind::kSet);
    set->items = args[0]->items;
    return push(set);
  }
  if (callable->is_global("_codecs", "encode") && args.size() == 2 &&
      args[0]->kind == PickleKind::kString && args[1]->kind == PickleKind::kString &&
      (args[1]->text == "latin1" || args[1]->text == "latin-1")) {
    return push_bytes(latin1_encode(args[0]->text));
  }
  PickleValue* call = make(PickleKind::kReduce);
  call->items = {callable, arguments};
  push(call);
}

// Python's str.encode('latin1') of UTF-8 text: every code point must be below 256.
std::string PickleMachine::latin1_encode(const std::string& text) const {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    auto byte = static_cast<uint8_t>(text[i]);
    if (byte < 0x80) {
      out.push_back(static_cast<char>(byte));
    } else if ((byte == 0xc2 || byte == 0xc3) && i + 1 < text.size()) {
      out.push_back(static_cast<char>(((byte & 0x03) << 6) | (text[++i] & 0x3f)));
    } else {
      fail("_codecs.encode: text has characters outside latin-1");
    }
  }
  return out;
}

void PickleMachine::build() {
  const PickleValue* state = pop();
  PickleValue* target = mutable_value(top());
  if (target->kind != PickleKind::kReduce && target->kind != PickleKind::kNewObj &&
      target->kind != PickleKind::kDict)
    fail("BUILD on " + describe_pickle_value(*target));
  if (target->state != nullptr) fail("BUILD applied twice to the same object");
  target->state = state;
}

}  // namespace ckconv
