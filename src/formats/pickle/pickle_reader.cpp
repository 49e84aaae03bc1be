// read_pickle (pickle_reader.h): the machine's input cursor and its opcode dispatch. Opcode
// semantics follow CPython's Lib/pickle.py; only the binary opcodes protocols 2-5 emit for
// data are implemented, everything else (protocol-0 text opcodes, out-of-band buffers,
// NEWOBJ_EX, EXT*) is refused by name.
#include "formats/pickle/pickle_reader.h"

#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "formats/pickle/pickle_machine.h"
#include "formats/pickle/pickle_opcodes.h"

namespace ckconv {

PickleDocument PickleMachine::run() {
  if (input_.size() > kMaxPickleBytes)
    fail("pickle of " + std::to_string(input_.size()) + " bytes exceeds the limit of " +
         std::to_string(kMaxPickleBytes));
  while (true) {
    opcode_position_ = position_;
    uint8_t opcode = read_u8();
    if (opcode == kStop) break;
    step(opcode);
  }
  if (!marks_.empty()) fail("STOP inside an unclosed MARK");
  if (stack_.size() != 1)
    fail("STOP with " + std::to_string(stack_.size()) + " values on the stack, expected 1");
  if (position_ != input_.size())
    fail(std::to_string(input_.size() - position_) + " unexpected bytes after STOP");
  document_.root_ = stack_.back();
  return std::move(document_);
}

void PickleMachine::fail(const std::string& message) const {
  fail_input(source_ + ": pickle byte " + std::to_string(opcode_position_) + ": " + message);
}

void PickleMachine::need(uint64_t count) const {
  if (count > input_.size() - position_)
    fail("truncated: needs " + std::to_string(count) + " more bytes, " +
         std::to_string(input_.size() - position_) + " left");
}

uint8_t PickleMachine::read_u8() {
  need(1);
  return static_cast<uint8_t>(input_[position_++]);
}

uint64_t PickleMachine::read_le(int size) {
  need(static_cast<uint64_t>(size));
  uint64_t value = 0;
  for (int i = 0; i < size; ++i)
    value |= static_cast<uint64_t>(static_cast<uint8_t>(input_[position_ + i])) << (8 * i);
  position_ += static_cast<size_t>(size);
  return value;
}

std::string_view PickleMachine::read_bytes(uint64_t count) {
  if (count > kMaxPickleStringBytes)
    fail("declared length " + std::to_string(count) + " exceeds the limit of " +
         std::to_string(kMaxPickleStringBytes));
  need(count);
  std::string_view bytes = input_.substr(position_, static_cast<size_t>(count));
  position_ += static_cast<size_t>(count);
  return bytes;
}

std::string_view PickleMachine::read_line() {
  size_t end = input_.find('\n', position_);
  if (end == std::string_view::npos) fail("truncated: unterminated GLOBAL name");
  std::string_view line = input_.substr(position_, end - position_);
  position_ = end + 1;
  return line;
}

void PickleMachine::step(uint8_t opcode) {
  switch (opcode) {
    case kProto: {
      uint8_t protocol = read_u8();
      if (protocol < 2 || protocol > 5)
        fail("pickle protocol " + std::to_string(protocol) + ", expected 2 to 5");
      return;
    }
    case kFrame:
      read_le(8);
      return;  // an I/O hint; the whole input is already in memory
    case kMark:
      if (marks_.size() >= kMaxPickleMarkDepth)
        fail("MARKs nest deeper than the limit of " + std::to_string(kMaxPickleMarkDepth));
      marks_.push_back(stack_.size());
      return;
    case kPop:
      pop();
      return;
    case kPopMark:
      pop_to_mark();
      return;
    case kDup:
      push(top());
      return;
    case kNone:
      push(make(PickleKind::kNone));
      return;
    case kNewTrue:
    case kNewFalse: {
      PickleValue* v = make(PickleKind::kBool);
      v->bool_value = opcode == kNewTrue;
      return push(v);
    }
    case kBinInt:
      return push_int(static_cast<int32_t>(static_cast<uint32_t>(read_le(4))));
    case kBinInt1:
      return push_int(read_u8());
    case kBinInt2:
      return push_int(static_cast<int64_t>(read_le(2)));
    case kLong1:
      return push_long(read_bytes(read_u8()));
    case kLong4: {
      auto length = static_cast<int32_t>(static_cast<uint32_t>(read_le(4)));
      if (length < 0) fail("LONG4 with negative length");
      return push_long(read_bytes(static_cast<uint64_t>(length)));
    }
    case kBinFloat: {
      need(8);
      uint64_t bits = 0;  // big-endian IEEE 754 double
      for (int i = 0; i < 8; ++i) bits = (bits << 8) | static_cast<uint8_t>(input_[position_++]);
      PickleValue* v = make(PickleKind::kFloat);
      std::memcpy(&v->float_value, &bits, sizeof bits);
      return push(v);
    }
    case kShortBinUnicode:
      return push_string(read_bytes(read_u8()));
    case kBinUnicode:
      return push_string(read_bytes(read_le(4)));
    case kBinUnicode8:
      return push_string(read_bytes(read_le(8)));
    case kShortBinString:
    case kBinString: {
      // Python 2 str; Python 3 decodes it as ASCII by default.
      std::string_view bytes = read_bytes(opcode == kShortBinString ? read_u8() : read_le(4));
      for (char c : bytes)
        if (static_cast<uint8_t>(c) >= 0x80) fail("Python 2 string is not ASCII");
      return push_string(bytes);
    }
    case kShortBinBytes:
      return push_bytes(read_bytes(read_u8()));
    case kBinBytes:
      return push_bytes(read_bytes(read_le(4)));
    case kBinBytes8:
    case kByteArray8:
      return push_bytes(read_bytes(read_le(8)));
    case kEmptyTuple:
      return push_tuple({});
    case kTuple1:
    case kTuple2:
    case kTuple3: {
      size_t count = static_cast<size_t>(opcode - kTuple1 + 1);
      std::vector<const PickleValue*> items(count);
      for (size_t i = count; i-- > 0;) items[i] = pop();
      return push_tuple(std::move(items));
    }
    case kTuple:
      return push_tuple(pop_to_mark());
    case kEmptyList:
      return push(make(PickleKind::kList));
    case kList: {
      PickleValue* list = make(PickleKind::kList);
      list->items = pop_to_mark();
      return push(list);
    }
    case kAppend: {
      const PickleValue* item = pop();
      PickleValue* list = container_on_top(PickleKind::kList, "APPEND");
      check_capacity(list, 1);
      list->items.push_back(item);
      return;
    }
    case kAppends: {
      std::vector<const PickleValue*> items = pop_to_mark();
      PickleValue* list = container_on_top(PickleKind::kList, "APPENDS");
      check_capacity(list, items.size());
      list->items.insert(list->items.end(), items.begin(), items.end());
      return;
    }
    case kEmptyDict:
      return push(make(PickleKind::kDict));
    case kDict: {
      std::vector<const PickleValue*> items = pop_to_mark();
      if (items.size() % 2 != 0) fail("DICT with an odd number of values");
      PickleValue* dict = make(PickleKind::kDict);
      for (size_t i = 0; i < items.size(); i += 2) set_item(dict, items[i], items[i + 1]);
      return push(dict);
    }
    case kSetItem: {
      const PickleValue* value = pop();
      const PickleValue* key = pop();
      PickleValue* dict = container_on_top(PickleKind::kDict, "SETITEM");
      set_item(dict, key, value);
      return;
    }
    case kSetItems: {
      std::vector<const PickleValue*> items = pop_to_mark();
      if (items.size() % 2 != 0) fail("SETITEMS with an odd number of values");
      PickleValue* dict = container_on_top(PickleKind::kDict, "SETITEMS");
      for (size_t i = 0; i < items.size(); i += 2) set_item(dict, items[i], items[i + 1]);
      return;
    }
    case kEmptySet:
      return push(make(PickleKind::kSet));
    case kAddItems: {
      std::vector<const PickleValue*> items = pop_to_mark();
      PickleValue* set = container_on_top(PickleKind::kSet, "ADDITEMS");
      check_capacity(set, items.size());
      set->items.insert(set->items.end(), items.begin(), items.end());
      return;
    }
    case kFrozenSet: {
      PickleValue* set = make(PickleKind::kSet);
      set->items = pop_to_mark();
      return push(set);
    }
    case kGlobal: {
      std::string_view module = read_line();
      std::string_view name = read_line();
      return push_global(module, name);
    }
    case kStackGlobal: {
      const PickleValue* name = pop();
      const PickleValue* module = pop();
      if (!module->is_string() || !name->is_string())
        fail("STACK_GLOBAL needs two str values, found " + describe_pickle_value(*module) +
             " and " + describe_pickle_value(*name));
      return push_global(module->text, name->text);
    }
    case kReduce:
      return reduce();
    case kNewObj: {
      const PickleValue* arguments = pop();
      const PickleValue* cls = pop();
      if (arguments->kind != PickleKind::kTuple)
        fail("NEWOBJ arguments are " + describe_pickle_value(*arguments) + ", expected a tuple");
      if (cls->kind != PickleKind::kGlobal)
        fail("NEWOBJ of " + describe_pickle_value(*cls) + ", expected a class");
      PickleValue* object = make(PickleKind::kNewObj);
      object->items = {cls, arguments};
      return push(object);
    }
    case kBuild:
      return build();
    case kBinPersId: {
      PickleValue* id = make(PickleKind::kPersistentId);
      id->items = {pop()};
      return push(id);
    }
    case kBinPut:
      return memo_put(read_u8());
    case kLongBinPut:
      return memo_put(read_le(4));
    case kMemoize:
      return memo_put(memo_.size());
    case kBinGet:
      return memo_get(read_u8());
    case kLongBinGet:
      return memo_get(read_le(4));
    default:
      break;
  }
  char hex[8];
  std::snprintf(hex, sizeof hex, "0x%02x", opcode);
  fail(std::string("unsupported pickle opcode ") + hex);
}

PickleDocument read_pickle(std::string_view bytes, const std::string& source, size_t max_values) {
  return PickleMachine(bytes, source, max_values).run();
}

}  // namespace ckconv
