#include "core/shape.h"

#include "core/error.h"

namespace ckconv {

bool add_overflows(int64_t a, int64_t b, int64_t* out) {
  return __builtin_add_overflow(a, b, out);
}
bool mul_overflows(int64_t a, int64_t b, int64_t* out) {
  return __builtin_mul_overflow(a, b, out);
}

void check_tensor_rank(size_t rank, const std::string& what) {
  if (rank > kMaxTensorRank)
    fail_input(what + ": shape has " + std::to_string(rank) +
               " dimensions, more than the limit of " + std::to_string(kMaxTensorRank));
}

int64_t checked_num_elements(const Shape& shape, const std::string& what) {
  check_tensor_rank(shape.size(), what);
  int64_t count = 1;
  for (int64_t dim : shape) {
    if (dim < 0) fail_input(what + ": negative dimension in shape " + shape_to_string(shape));
    if (mul_overflows(count, dim, &count) || count > kMaxTensorBytes)
      fail_input(what + ": shape " + shape_to_string(shape) + " is too large");
  }
  return count;
}

int64_t num_elements(const Shape& shape) {
  int64_t count = 1;
  for (int64_t dim : shape) count *= dim;
  return count;
}

Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size());
  int64_t stride = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = stride;
    stride *= shape[i];
  }
  return strides;
}

std::string shape_to_string(const Shape& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(shape[i]);
  }
  return out + "]";
}

}  // namespace ckconv
