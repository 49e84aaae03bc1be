// Tensor shapes and overflow-checked size arithmetic. Every size computed from untrusted
// input goes through these helpers, so a hostile header cannot wrap a 64-bit count.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ckconv {

using Shape = std::vector<int64_t>;

// Largest element or byte count ckconv accepts for one tensor (2^50 bytes, 1 PiB): far above
// any real model, far below int64 overflow in offset arithmetic.
inline constexpr int64_t kMaxTensorBytes = int64_t{1} << 50;
// Most dimensions a tensor may have. PyTorch itself caps dims at 64 in places (and real
// checkpoints use at most 5); a hostile header could otherwise list millions of them.
inline constexpr size_t kMaxTensorRank = 64;

// Product of dims; throws kBadInput on a negative dim, more than kMaxTensorRank dims, or when
// the product exceeds kMaxTensorBytes. `what` names the tensor for the message.
int64_t checked_num_elements(const Shape& shape, const std::string& what);
// Throws kBadInput naming `what` when `rank` exceeds kMaxTensorRank.
void check_tensor_rank(size_t rank, const std::string& what);
int64_t num_elements(const Shape& shape);  // for shapes already validated

// Row-major (C order) element strides.
Shape contiguous_strides(const Shape& shape);

std::string shape_to_string(const Shape& shape);  // "[2, 3]"

// a + b and a * b for non-negative values, false on overflow past INT64_MAX.
bool add_overflows(int64_t a, int64_t b, int64_t* out);
bool mul_overflows(int64_t a, int64_t b, int64_t* out);

}  // namespace ckconv
