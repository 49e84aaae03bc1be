// Opcode encodings follow CPython's Lib/pickle.py (docs/formats.md "The restricted pickle reader").
#include "formats/pickle/pickle_writer.h"

#include "core/error.h"

namespace ckconv {

PickleWriter::PickleWriter() {
  opcode(0x80);  // PROTO
  opcode(2);
}

void PickleWriter::le(uint64_t value, int size) {
  for (int i = 0; i < size; ++i) out_.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

void PickleWriter::none() {
  opcode('N');
}
void PickleWriter::boolean(bool value) {
  opcode(value ? 0x88 : 0x89);
}

void PickleWriter::integer(int64_t value) {
  if (value >= 0 && value < 256) {
    opcode('K');
    le(static_cast<uint64_t>(value), 1);
  } else if (value >= 0 && value < 65536) {
    opcode('M');
    le(static_cast<uint64_t>(value), 2);
  } else if (value >= INT32_MIN && value <= INT32_MAX) {
    opcode('J');
    le(static_cast<uint64_t>(static_cast<uint32_t>(static_cast<int32_t>(value))), 4);
  } else {
    // LONG1: the shortest little-endian two's complement that keeps the sign bit right.
    auto bits = static_cast<uint64_t>(value);
    int size = 8;
    while (size > 1) {
      uint8_t top = static_cast<uint8_t>(bits >> (8 * (size - 1)));
      uint8_t next = static_cast<uint8_t>(bits >> (8 * (size - 2)));
      bool redundant = (value >= 0 && top == 0x00 && (next & 0x80) == 0) ||
                       (value < 0 && top == 0xff && (next & 0x80) != 0);
      if (!redundant) break;
      --size;
    }
    opcode(0x8a);
    le(static_cast<uint64_t>(size), 1);
    le(bits, size);
  }
}

void PickleWriter::string(std::string_view utf8) {
  CKCONV_CHECK(utf8.size() <= UINT32_MAX);
  opcode('X');
  le(utf8.size(), 4);
  out_.append(utf8);
}

void PickleWriter::global(std::string_view module, std::string_view name) {
  CKCONV_CHECK(module.find('\n') == std::string_view::npos &&
               name.find('\n') == std::string_view::npos);
  opcode('c');
  out_.append(module);
  out_.push_back('\n');
  out_.append(name);
  out_.push_back('\n');
}

void PickleWriter::begin_tuple(size_t count) {
  if (count > 3) mark();
}

void PickleWriter::end_tuple(size_t count) {
  static constexpr uint8_t kSmallTuples[] = {')', 0x85, 0x86, 0x87};
  opcode(count <= 3 ? kSmallTuples[count] : 't');
}

void PickleWriter::int_tuple(const Shape& values) {
  begin_tuple(values.size());
  for (int64_t value : values) integer(value);
  end_tuple(values.size());
}

void PickleWriter::mark() {
  opcode('(');
}
void PickleWriter::empty_list() {
  opcode(']');
}
void PickleWriter::append() {
  opcode('a');
}
void PickleWriter::appends() {
  opcode('e');
}
void PickleWriter::empty_dict() {
  opcode('}');
}
void PickleWriter::set_item() {
  opcode('s');
}
void PickleWriter::set_items() {
  opcode('u');
}
void PickleWriter::reduce() {
  opcode('R');
}
void PickleWriter::new_object() {
  opcode(0x81);
}
void PickleWriter::build() {
  opcode('b');
}
void PickleWriter::persistent_id() {
  opcode('Q');
}

void PickleWriter::memo_put(uint32_t index) {
  if (index < 256) {
    opcode('q');
    le(index, 1);
  } else {
    opcode('r');
    le(index, 4);
  }
}

void PickleWriter::memo_get(uint32_t index) {
  if (index < 256) {
    opcode('h');
    le(index, 1);
  } else {
    opcode('j');
    le(index, 4);
  }
}

std::string PickleWriter::finish() {
  opcode('.');
  std::string result = std::move(out_);
  out_.clear();
  return result;
}

}  // namespace ckconv
