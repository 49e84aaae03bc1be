// Dtype tables (docs/formats.md "safetensors", "DCP directories", "torch.save zip archives").
#include "core/dtype.h"

#include <array>

namespace ckconv {
namespace {

struct DTypeRow {
  DType dtype;
  std::string_view name;
  std::string_view torch_name;
  std::string_view legacy_storage;
  int bits;
  bool floating;
};

// Ordered by enum value, which is the safetensors sort rank.
constexpr std::array<DTypeRow, 22> kRows = {{
    {DType::kBool, "BOOL", "bool", "BoolStorage", 8, false},
    {DType::kF4, "F4", "float4_e2m1fn_x2", "", 4, true},
    {DType::kF6_E2M3, "F6_E2M3", "", "", 6, true},
    {DType::kF6_E3M2, "F6_E3M2", "", "", 6, true},
    {DType::kU8, "U8", "uint8", "ByteStorage", 8, false},
    {DType::kI8, "I8", "int8", "CharStorage", 8, false},
    {DType::kF8_E5M2, "F8_E5M2", "float8_e5m2", "", 8, true},
    {DType::kF8_E4M3, "F8_E4M3", "float8_e4m3fn", "", 8, true},
    {DType::kF8_E8M0, "F8_E8M0", "float8_e8m0fnu", "", 8, true},
    {DType::kF8_E4M3FNUZ, "F8_E4M3FNUZ", "float8_e4m3fnuz", "", 8, true},
    {DType::kF8_E5M2FNUZ, "F8_E5M2FNUZ", "float8_e5m2fnuz", "", 8, true},
    {DType::kI16, "I16", "int16", "ShortStorage", 16, false},
    {DType::kU16, "U16", "uint16", "", 16, false},
    {DType::kF16, "F16", "float16", "HalfStorage", 16, true},
    {DType::kBF16, "BF16", "bfloat16", "BFloat16Storage", 16, true},
    {DType::kI32, "I32", "int32", "IntStorage", 32, false},
    {DType::kU32, "U32", "uint32", "", 32, false},
    {DType::kF32, "F32", "float32", "FloatStorage", 32, true},
    {DType::kC64, "C64", "complex64", "ComplexFloatStorage", 64, true},
    {DType::kF64, "F64", "float64", "DoubleStorage", 64, true},
    {DType::kI64, "I64", "int64", "LongStorage", 64, false},
    {DType::kU64, "U64", "uint64", "", 64, false},
}};

const DTypeRow& row(DType dtype) {
  return kRows[static_cast<size_t>(dtype)];
}

template <typename Field>
std::optional<DType> find(std::string_view value, Field field) {
  if (value.empty()) return std::nullopt;
  for (const auto& r : kRows)
    if (r.*field == value) return r.dtype;
  return std::nullopt;
}

}  // namespace

std::string_view dtype_name(DType dtype) {
  return row(dtype).name;
}
std::optional<DType> dtype_from_name(std::string_view name) {
  return find(name, &DTypeRow::name);
}
std::string_view dtype_torch_name(DType dtype) {
  return row(dtype).torch_name;
}
std::optional<DType> dtype_from_torch_name(std::string_view name) {
  // Aliases torch pickles under (torch.float is float32, torch.half is float16, ...).
  if (name == "float") return DType::kF32;
  if (name == "double") return DType::kF64;
  if (name == "half") return DType::kF16;
  if (name == "long") return DType::kI64;
  if (name == "int") return DType::kI32;
  if (name == "short") return DType::kI16;
  return find(name, &DTypeRow::torch_name);
}
std::string_view dtype_legacy_storage_name(DType dtype) {
  return row(dtype).legacy_storage;
}
std::optional<DType> dtype_from_legacy_storage_name(std::string_view name) {
  return find(name, &DTypeRow::legacy_storage);
}
int dtype_bits(DType dtype) {
  return row(dtype).bits;
}
int dtype_size(DType dtype) {
  return row(dtype).bits % 8 == 0 ? row(dtype).bits / 8 : 0;
}
int dtype_sort_rank(DType dtype) {
  return static_cast<int>(dtype);
}
bool dtype_is_floating(DType dtype) {
  return row(dtype).floating;
}

}  // namespace ckconv
