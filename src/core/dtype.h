// Element types as safetensors and PyTorch name them, with sizes and the safetensors writer's
// sort rank (docs/formats.md "safetensors"). Sub-byte types (F4, F6_*) are recognised by readers
// but cannot be converted: they have no whole-byte element size.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ckconv {

enum class DType : uint8_t {
  kBool,
  kF4,
  kF6_E2M3,
  kF6_E3M2,
  kU8,
  kI8,
  kF8_E5M2,
  kF8_E4M3,
  kF8_E8M0,
  kF8_E4M3FNUZ,
  kF8_E5M2FNUZ,
  kI16,
  kU16,
  kF16,
  kBF16,
  kI32,
  kU32,
  kF32,
  kC64,
  kF64,
  kI64,
  kU64,
};

// Safetensors dtype string ("F32", "BF16", ...).
std::string_view dtype_name(DType dtype);
std::optional<DType> dtype_from_name(std::string_view name);

// PyTorch attribute name ("float32", "bfloat16", ...), as pickled by DCP and torch.save.
std::string_view dtype_torch_name(DType dtype);
std::optional<DType> dtype_from_torch_name(std::string_view name);

// Legacy typed-storage class of torch.save ("FloatStorage"); empty when the dtype has none
// (torch then uses UntypedStorage with _rebuild_tensor_v3).
std::string_view dtype_legacy_storage_name(DType dtype);
std::optional<DType> dtype_from_legacy_storage_name(std::string_view name);

int dtype_bits(DType dtype);
// Bytes per element; 0 for sub-byte types.
int dtype_size(DType dtype);
// Position in the safetensors enum; the writer sorts by this, descending.
int dtype_sort_rank(DType dtype);
bool dtype_is_floating(DType dtype);

}  // namespace ckconv
