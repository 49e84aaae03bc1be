// The pickle virtual machine behind read_pickle (pickle_reader.h), internal to
// src/formats/pickle. Its input cursor and opcode dispatch live in pickle_reader.cpp; the
// stack, memo and value construction, where every limit of pickle_reader.h is enforced, in
// pickle_stack.cpp. Every failure throws kBadInput naming the source and the opcode's byte.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "formats/pickle/pickle_value.h"

namespace ckconv {

// Runs the opcodes; one instance per read_pickle call.
class PickleMachine {
 public:
  PickleMachine(std::string_view input, const std::string& source, size_t max_values)
      : input_(input), source_(source), max_values_(max_values) {}

  // Decodes the whole input, which must end with STOP leaving exactly one value.
  PickleDocument run();

 private:
  [[noreturn]] void fail(const std::string& message) const;

  // Input (pickle_reader.cpp): bounds-checked reads at position_.
  void need(uint64_t count) const;
  uint8_t read_u8();
  uint64_t read_le(int size);
  std::string_view read_bytes(uint64_t count);
  std::string_view read_line();
  void step(uint8_t opcode);

  // Stack and marks (pickle_stack.cpp).
  void push(const PickleValue* value);
  PickleValue* make(PickleKind kind);
  size_t frame_start() const { return marks_.empty() ? 0 : marks_.back(); }
  const PickleValue* pop();
  const PickleValue* top() const;
  std::vector<const PickleValue*> pop_to_mark();  // values above the last MARK, removed
  // The objects on the stack are const for consumers; the machine alone mutates containers
  // (APPEND, SETITEM, BUILD) and owns every value through document_.
  static PickleValue* mutable_value(const PickleValue* value) {
    return const_cast<PickleValue*>(value);
  }
  PickleValue* container_on_top(PickleKind kind, const char* opcode);
  void check_capacity(const PickleValue* container, size_t adding) const;
  void set_item(PickleValue* dict, const PickleValue* key, const PickleValue* value);

  // Values (pickle_stack.cpp).
  void push_int(int64_t value);
  void push_string(std::string_view bytes);
  void push_bytes(std::string_view bytes);
  void push_long(std::string_view bytes);  // LONG1/LONG4: little-endian two's complement
  void push_global(std::string_view module, std::string_view name);
  void push_tuple(std::vector<const PickleValue*> items);

  // Memo and calls (pickle_stack.cpp).
  void memo_put(uint64_t index);
  void memo_get(uint64_t index);
  void reduce();
  std::string latin1_encode(const std::string& text) const;
  void build();

  std::string_view input_;
  const std::string& source_;
  size_t max_values_;
  size_t position_ = 0;
  size_t opcode_position_ = 0;
  std::vector<const PickleValue*> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, const PickleValue*> memo_;
  size_t copied_items_ = 0;  // items copied by builtins.set(list) REDUCEs, see reduce()
  PickleDocument document_;
};

}  // namespace ckconv
