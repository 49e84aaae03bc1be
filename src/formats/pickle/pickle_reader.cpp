// The pickle virtual machine of pickle_reader.h. Opcode semantics follow CPython's
// Lib/pickle.py (spec/formats.md §5); only the binary opcodes protocols 2-5 emit for data are
// implemented, everything else (protocol-0 text opcodes, out-of-band buffers, NEWOBJ_EX,
// EXT*) is refused by name.
#include "formats/pickle/pickle_reader.h"

#include <array>
#include <cstdio>
#include <cstring>
#include <unordered_map>

#include "core/error.h"

namespace ckconv {
namespace {

struct AllowedGlobal {
  std::string_view module;
  std::string_view name;
};

// Every global torch.save (weights-only subset, formats.md §4.5) and DCP .metadata (§3.3)
// pickles. Listed one by one so an attacker cannot reach anything by a clever prefix.
constexpr std::array kAllowedGlobals = {
    AllowedGlobal{"collections", "OrderedDict"},
    AllowedGlobal{"collections", "Counter"},
    AllowedGlobal{"builtins", "set"},
    AllowedGlobal{"builtins", "bytearray"},
    AllowedGlobal{"builtins", "complex"},
    AllowedGlobal{"_codecs", "encode"},
    AllowedGlobal{"torch._utils", "_rebuild_tensor"},
    AllowedGlobal{"torch._utils", "_rebuild_tensor_v2"},
    AllowedGlobal{"torch._utils", "_rebuild_tensor_v3"},
    AllowedGlobal{"torch._utils", "_rebuild_parameter"},
    AllowedGlobal{"torch._utils", "_rebuild_parameter_with_state"},
    AllowedGlobal{"torch._utils", "_rebuild_qtensor"},
    AllowedGlobal{"torch._utils", "_rebuild_sparse_tensor"},
    AllowedGlobal{"torch._utils", "_rebuild_meta_tensor_no_storage"},
    AllowedGlobal{"torch._utils", "_rebuild_wrapper_subclass"},
    AllowedGlobal{"torch._tensor", "_rebuild_from_type_v2"},
    AllowedGlobal{"torch.nn.parameter", "Parameter"},
    AllowedGlobal{"torch.serialization", "_get_layout"},
    AllowedGlobal{"torch.storage", "UntypedStorage"},
    AllowedGlobal{"torch.storage", "TypedStorage"},
    AllowedGlobal{"torch", "Size"},
    AllowedGlobal{"torch", "device"},
    AllowedGlobal{"torch", "Tensor"},
    AllowedGlobal{"torch.distributed.checkpoint.metadata", "Metadata"},
    AllowedGlobal{"torch.distributed.checkpoint.metadata", "TensorStorageMetadata"},
    AllowedGlobal{"torch.distributed.checkpoint.metadata", "BytesStorageMetadata"},
    AllowedGlobal{"torch.distributed.checkpoint.metadata", "ChunkStorageMetadata"},
    AllowedGlobal{"torch.distributed.checkpoint.metadata", "TensorProperties"},
    AllowedGlobal{"torch.distributed.checkpoint.metadata", "_MEM_FORMAT_ENCODING"},
    AllowedGlobal{"torch.distributed.checkpoint.metadata", "MetadataIndex"},
    AllowedGlobal{"torch.distributed.checkpoint.metadata", "StorageMeta"},
    AllowedGlobal{"torch.distributed.checkpoint.filesystem", "_StorageInfo"},
    AllowedGlobal{"pathlib", "PosixPath"},
    AllowedGlobal{"pathlib", "PurePosixPath"},
    AllowedGlobal{"pathlib._local", "PosixPath"},
    AllowedGlobal{"pathlib._local", "PurePosixPath"},
};

// Attributes of the `torch` module that are dtypes or storage classes.
constexpr std::array<std::string_view, 72> kTorchDtypesAndStorages = {
    "float32",
    "float",
    "float64",
    "double",
    "float16",
    "half",
    "bfloat16",
    "complex32",
    "chalf",
    "complex64",
    "cfloat",
    "complex128",
    "cdouble",
    "uint8",
    "int8",
    "int16",
    "short",
    "int32",
    "int",
    "int64",
    "long",
    "uint16",
    "uint32",
    "uint64",
    "bool",
    "float8_e4m3fn",
    "float8_e5m2",
    "float8_e4m3fnuz",
    "float8_e5m2fnuz",
    "float8_e8m0fnu",
    "float4_e2m1fn_x2",
    "quint8",
    "qint8",
    "qint32",
    "quint4x2",
    "quint2x4",
    "bits1x8",
    "bits2x4",
    "bits4x2",
    "bits8",
    "bits16",
    "uint1",
    "uint2",
    "uint3",
    "uint4",
    "uint5",
    "uint6",
    "uint7",
    "int1",
    "int2",
    "int3",
    "int4",
    "int5",
    "int6",
    "int7",
    "DoubleStorage",
    "FloatStorage",
    "HalfStorage",
    "LongStorage",
    "IntStorage",
    "ShortStorage",
    "CharStorage",
    "ByteStorage",
    "BoolStorage",
    "BFloat16Storage",
    "ComplexDoubleStorage",
    "ComplexFloatStorage",
    "QInt8Storage",
    "QInt32Storage",
    "QUInt8Storage",
    "QUInt4x2Storage",
    "QUInt2x4Storage",
};

// Opcode bytes (CPython Lib/pickle.py).
enum Opcode : uint8_t {
  kMark = '(',
  kStop = '.',
  kPop = '0',
  kPopMark = '1',
  kDup = '2',
  kBinInt = 'J',
  kBinInt1 = 'K',
  kBinInt2 = 'M',
  kNone = 'N',
  kBinPersId = 'Q',
  kReduce = 'R',
  kBinString = 'T',
  kShortBinString = 'U',
  kBinUnicode = 'X',
  kAppend = 'a',
  kBuild = 'b',
  kGlobal = 'c',
  kDict = 'd',
  kEmptyDict = '}',
  kAppends = 'e',
  kBinGet = 'h',
  kLongBinGet = 'j',
  kList = 'l',
  kEmptyList = ']',
  kBinPut = 'q',
  kLongBinPut = 'r',
  kSetItem = 's',
  kTuple = 't',
  kEmptyTuple = ')',
  kSetItems = 'u',
  kBinFloat = 'G',
  kProto = 0x80,
  kNewObj = 0x81,
  kTuple1 = 0x85,
  kTuple2 = 0x86,
  kTuple3 = 0x87,
  kNewTrue = 0x88,
  kNewFalse = 0x89,
  kLong1 = 0x8a,
  kLong4 = 0x8b,
  kBinBytes = 'B',
  kShortBinBytes = 'C',
  kShortBinUnicode = 0x8c,
  kBinUnicode8 = 0x8d,
  kBinBytes8 = 0x8e,
  kEmptySet = 0x8f,
  kAddItems = 0x90,
  kFrozenSet = 0x91,
  kStackGlobal = 0x93,
  kMemoize = 0x94,
  kFrame = 0x95,
  kByteArray8 = 0x96,
};

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

bool is_allowed_pickle_global(std::string_view module, std::string_view name) {
  for (const auto& allowed : kAllowedGlobals)
    if (allowed.module == module && allowed.name == name) return true;
  if (module == "torch")
    for (std::string_view attribute : kTorchDtypesAndStorages)
      if (attribute == name) return true;
  return false;
}

// Runs the opcodes; one instance per read_pickle call.
class PickleMachine {
 public:
  PickleMachine(std::string_view input, const std::string& source, size_t max_values)
      : input_(input), source_(source), max_values_(max_values) {}

  PickleDocument run() {
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

 private:
  [[noreturn]] void fail(const std::string& message) const {
    fail_input(source_ + ": pickle byte " + std::to_string(opcode_position_) + ": " + message);
  }

  // --- input -------------------------------------------------------------------------------
  void need(uint64_t count) const {
    if (count > input_.size() - position_)
      fail("truncated: needs " + std::to_string(count) + " more bytes, " +
           std::to_string(input_.size() - position_) + " left");
  }
  uint8_t read_u8() {
    need(1);
    return static_cast<uint8_t>(input_[position_++]);
  }
  uint64_t read_le(int size) {
    need(static_cast<uint64_t>(size));
    uint64_t value = 0;
    for (int i = 0; i < size; ++i)
      value |= static_cast<uint64_t>(static_cast<uint8_t>(input_[position_ + i])) << (8 * i);
    position_ += static_cast<size_t>(size);
    return value;
  }
  std::string_view read_bytes(uint64_t count) {
    if (count > kMaxPickleStringBytes)
      fail("declared length " + std::to_string(count) + " exceeds the limit of " +
           std::to_string(kMaxPickleStringBytes));
    need(count);
    std::string_view bytes = input_.substr(position_, static_cast<size_t>(count));
    position_ += static_cast<size_t>(count);
    return bytes;
  }
  std::string_view read_line() {
    size_t end = input_.find('\n', position_);
    if (end == std::string_view::npos) fail("truncated: unterminated GLOBAL name");
    std::string_view line = input_.substr(position_, end - position_);
    position_ = end + 1;
    return line;
  }

  // --- stack -------------------------------------------------------------------------------
  void push(const PickleValue* value) {
    if (stack_.size() >= kMaxPickleStackSize)
      fail("stack exceeds the limit of " + std::to_string(kMaxPickleStackSize) + " values");
    stack_.push_back(value);
  }
  PickleValue* make(PickleKind kind) {
    if (document_.value_count() >= max_values_)
      fail("more than the limit of " + std::to_string(max_values_) + " values");
    return document_.make(kind);
  }
  size_t frame_start() const { return marks_.empty() ? 0 : marks_.back(); }
  const PickleValue* pop() {
    if (stack_.size() <= frame_start()) fail("stack underflow");
    const PickleValue* value = stack_.back();
    stack_.pop_back();
    return value;
  }
  const PickleValue* top() const {
    if (stack_.size() <= frame_start()) fail("stack underflow");
    return stack_.back();
  }
  // Values above the most recent MARK, which is removed.
  std::vector<const PickleValue*> pop_to_mark() {
    if (marks_.empty()) fail("no MARK to pop to");
    size_t start = marks_.back();
    marks_.pop_back();
    std::vector<const PickleValue*> items(stack_.begin() + static_cast<std::ptrdiff_t>(start),
                                          stack_.end());
    stack_.resize(start);
    return items;
  }
  // The objects on the stack are const for consumers; the machine alone mutates containers
  // (APPEND, SETITEM, BUILD) and owns every value through document_.
  static PickleValue* mutable_value(const PickleValue* value) {
    return const_cast<PickleValue*>(value);
  }
  PickleValue* container_on_top(PickleKind kind, const char* opcode) {
    const PickleValue* target = top();
    if (target->kind != kind)
      fail(std::string(opcode) + " on " + describe_pickle_value(*target) + ", expected a " +
           (kind == PickleKind::kList   ? "list"
            : kind == PickleKind::kDict ? "dict"
                                        : "set"));
    return mutable_value(target);
  }
  void check_capacity(const PickleValue* container, size_t adding) const {
    size_t count =
        container->kind == PickleKind::kDict ? container->entries.size() : container->items.size();
    if (adding > kMaxPickleContainerItems - count)
      fail("container exceeds the limit of " + std::to_string(kMaxPickleContainerItems) + " items");
  }

  // --- values ------------------------------------------------------------------------------
  void push_int(int64_t value) {
    PickleValue* v = make(PickleKind::kInt);
    v->int_value = value;
    push(v);
  }
  void push_string(std::string_view bytes) {
    if (!is_utf8(bytes)) fail("str value is not valid UTF-8");
    PickleValue* v = make(PickleKind::kString);
    v->text.assign(bytes);
    push(v);
  }
  void push_bytes(std::string_view bytes) {
    PickleValue* v = make(PickleKind::kBytes);
    v->text.assign(bytes);
    push(v);
  }
  // LONG1/LONG4: little-endian two's complement.
  void push_long(std::string_view bytes) {
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
  void push_global(std::string_view module, std::string_view name) {
    if (!is_allowed_pickle_global(module, name))
      fail("refusing global " + std::string(module) + "." + std::string(name) +
           ": not a class or function that torch checkpoints use (nothing is executed)");
    PickleValue* v = make(PickleKind::kGlobal);
    v->text.assign(module);
    v->name.assign(name);
    push(v);
  }
  void push_tuple(std::vector<const PickleValue*> items) {
    PickleValue* v = make(PickleKind::kTuple);
    v->items = std::move(items);
    push(v);
  }

  // --- memo --------------------------------------------------------------------------------
  void memo_put(uint64_t index) {
    const PickleValue* value = top();
    auto found = memo_.find(index);
    if (found == memo_.end() && memo_.size() >= kMaxPickleMemoEntries)
      fail("memo exceeds the limit of " + std::to_string(kMaxPickleMemoEntries) + " entries");
    memo_[index] = value;
  }
  void memo_get(uint64_t index) {
    auto found = memo_.find(index);
    if (found == memo_.end()) fail("memo index " + std::to_string(index) + " was never stored");
    push(found->second);
  }

  // --- calls -------------------------------------------------------------------------------
  // REDUCE: a few container constructors become plain containers, so SETITEM(S)/APPEND on an
  // OrderedDict and protocol-2 bytes/sets read like their protocol-4 forms. Anything else is
  // recorded as a call.
  void reduce() {
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
        fail("builtins.set() copies exceed the limit of " +
             std::to_string(kMaxPickleContainerItems) + " items");
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
  std::string latin1_encode(const std::string& text) const {
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
  void build() {
    const PickleValue* state = pop();
    PickleValue* target = mutable_value(top());
    if (target->kind != PickleKind::kReduce && target->kind != PickleKind::kNewObj &&
        target->kind != PickleKind::kDict)
      fail("BUILD on " + describe_pickle_value(*target));
    if (target->state != nullptr) fail("BUILD applied twice to the same object");
    target->state = state;
  }

  void step(uint8_t opcode) {
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

  void set_item(PickleValue* dict, const PickleValue* key, const PickleValue* value) {
    check_capacity(dict, 1);
    dict->entries.emplace_back(key, value);
  }

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

PickleDocument read_pickle(std::string_view bytes, const std::string& source, size_t max_values) {
  return PickleMachine(bytes, source, max_values).run();
}

}  // namespace ckconv
