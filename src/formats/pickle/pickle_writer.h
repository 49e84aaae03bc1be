// A protocol-2 pickle emitter that uses only the opcodes torch.load's weights-only unpickler
// accepts (docs/formats.md "torch.save zip archives"): GLOBAL, BINUNICODE, BININT*/LONG1,
// NONE/NEWTRUE/NEWFALSE, tuples, EMPTY_LIST/APPEND(S), EMPTY_DICT/SETITEM(S), MARK, REDUCE, NEWOBJ,
// BUILD, BINPERSID, BINPUT/BINGET. The same opcodes serve DCP's .metadata, which plain pickle.load
// reads.
//
// The writer is a thin opcode builder: callers emit values in pickle order (a stack machine),
// e.g. a call `f(a, b)` is global(f), begin_tuple(2), a, b, end_tuple(2), reduce().
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/shape.h"

namespace ckconv {

class PickleWriter {
 public:
  PickleWriter();  // emits PROTO 2

  void none();
  void boolean(bool value);
  void integer(int64_t value);         // smallest of BININT1, BININT2, BININT, LONG1
  void string(std::string_view utf8);  // BINUNICODE
  void global(std::string_view module, std::string_view name);

  // A tuple of `count` values emitted between the two calls: MARK ... TUPLE when count > 3,
  // EMPTY_TUPLE / TUPLE1..3 otherwise.
  void begin_tuple(size_t count);
  void end_tuple(size_t count);
  void int_tuple(const Shape& values);

  void mark();
  void empty_list();
  void append();   // list, value -> list
  void appends();  // list, MARK, values... -> list
  void empty_dict();
  void set_item();                // dict, key, value -> dict
  void set_items();               // dict, MARK, key, value, ... -> dict
  void reduce();                  // callable, args -> result
  void new_object();              // class, args -> instance
  void build();                   // object, state -> object
  void persistent_id();           // id -> persistent object (BINPERSID)
  void memo_put(uint32_t index);  // BINPUT / LONG_BINPUT
  void memo_get(uint32_t index);  // BINGET / LONG_BINGET

  // Appends STOP and returns the pickle; the writer is then empty.
  std::string finish();

 private:
  void opcode(uint8_t code) { out_.push_back(static_cast<char>(code)); }
  void le(uint64_t value, int size);
  std::string out_;
};

}  // namespace ckconv
