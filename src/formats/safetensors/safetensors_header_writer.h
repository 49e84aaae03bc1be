// Writing a safetensors header: the bytes before the data section exactly as the reference
// writer (safetensors.torch.save_file) produces them, and the tensor order it uses.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "formats/safetensors/safetensors_header.h"

namespace ckconv {

// The bytes before the data section exactly as `safetensors.torch.save_file(tensors, path,
// metadata)` writes them: u64 LE length, then compact JSON with `__metadata__` first (only
// when given; with two or more keys the reference order is random, this emits name order),
// tensors in the given order with fields dtype/shape/data_offsets, serde_json escaping, and
// space padding to a multiple of 8. `tensors` must already be in reference order with
// cumulative offsets (see precedes_in_reference_order).
std::string serialize_header(const std::vector<SafetensorsEntry>& tensors,
                             const std::optional<std::map<std::string, std::string>>& metadata);

}  // namespace ckconv
