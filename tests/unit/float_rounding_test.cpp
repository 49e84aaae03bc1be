// fp32 -> bf16 / f16 rounding of `init --dtype`: round to nearest, ties to even, overflow to
// infinity, f16 subnormals, infinities and NaN kept. Expected bit patterns are IEEE 754's,
// the ones PyTorch's `tensor.to(torch.bfloat16 / torch.float16)` gives for finite values.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <limits>

#include "pipeline/init_checkpoint.h"

namespace ckconv {
namespace {

float from_bits(uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, 4);
  return value;
}

TEST_CASE("float_to_bfloat16 rounds to nearest, ties to even") {
  CHECK(float_to_bfloat16(1.0f) == 0x3F80);
  CHECK(float_to_bfloat16(-2.0f) == 0xC000);
  CHECK(float_to_bfloat16(0.0f) == 0x0000);
  CHECK(float_to_bfloat16(-0.0f) == 0x8000);
  CHECK(float_to_bfloat16(from_bits(0x3F808000)) == 0x3F80);  // 1 + 2^-8: tie, even stays
  CHECK(float_to_bfloat16(from_bits(0x3F818000)) == 0x3F82);  // 1 + 3 * 2^-8: tie, odd rounds up
  CHECK(float_to_bfloat16(from_bits(0x3F808001)) == 0x3F81);  // just above the tie
  CHECK(float_to_bfloat16(from_bits(0x3F807FFF)) == 0x3F80);  // just below the tie
  CHECK(float_to_bfloat16(from_bits(0x7F7FFFFF)) == 0x7F80);  // largest float overflows to inf
  CHECK(float_to_bfloat16(std::numeric_limits<float>::infinity()) == 0x7F80);
  CHECK(float_to_bfloat16(-std::numeric_limits<float>::infinity()) == 0xFF80);
  CHECK(float_to_bfloat16(from_bits(0x00000001)) == 0x0000);  // smallest subnormal: to zero
  CHECK(float_to_bfloat16(from_bits(0x00018000)) == 0x0002);  // subnormal tie, odd rounds up
  // NaN stays NaN (exponent all ones, mantissa not zero), including a signalling NaN whose
  // payload lives only in the low bits that are cut off.
  for (uint32_t nan_bits : {0x7FC00000u, 0xFFC00000u, 0x7F800001u}) {
    const uint16_t bits = float_to_bfloat16(from_bits(nan_bits));
    CHECK((bits & 0x7F80) == 0x7F80);
    CHECK((bits & 0x007F) != 0);
  }
}

TEST_CASE("float_to_half rounds to nearest, ties to even, with subnormals and overflow") {
  CHECK(float_to_half(1.0f) == 0x3C00);
  CHECK(float_to_half(-2.0f) == 0xC000);
  CHECK(float_to_half(0.0f) == 0x0000);
  CHECK(float_to_half(-0.0f) == 0x8000);
  CHECK(float_to_half(from_bits(0x3F801000)) == 0x3C00);  // 1 + 2^-11: tie, even stays
  CHECK(float_to_half(from_bits(0x3F803000)) == 0x3C02);  // 1 + 3 * 2^-11: tie, odd rounds up
  CHECK(float_to_half(from_bits(0x3F801001)) == 0x3C01);  // just above the tie
  CHECK(float_to_half(65504.0f) == 0x7BFF);               // largest half
  CHECK(float_to_half(65519.0f) == 0x7BFF);               // below the midpoint to 2^16
  CHECK(float_to_half(65520.0f) == 0x7C00);               // the midpoint: ties to even = inf
  CHECK(float_to_half(-1e9f) == 0xFC00);
  CHECK(float_to_half(std::numeric_limits<float>::infinity()) == 0x7C00);
  CHECK(float_to_half(6.103515625e-05f) == 0x0400);          // 2^-14, smallest normal
  CHECK(float_to_half(5.9604644775390625e-08f) == 0x0001);   // 2^-24, smallest subnormal
  CHECK(float_to_half(2.98023223876953125e-08f) == 0x0000);  // 2^-25: tie, even is zero
  CHECK(float_to_half(8.94069671630859375e-08f) == 0x0002);  // 1.5 * 2^-24: tie, to even
  CHECK(float_to_half(-5.9604644775390625e-08f) == 0x8001);
  CHECK(float_to_half(from_bits(0x387FE000)) == 0x0400);  // rounds up out of the subnormals
  CHECK(float_to_half(from_bits(0x7FC00000)) == 0x7E00);
  CHECK(float_to_half(from_bits(0xFFC00000)) == 0xFE00);
}

}  // namespace
}  // namespace ckconv
