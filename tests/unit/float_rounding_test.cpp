// fp32 -> bf16 / f16 rounding (core/float_convert, used by every cast: --dtype, init): round to
// nearest, ties to even, overflow to infinity, f16 subnormals, infinities and NaN kept. The
// expected bit patterns are worked out by hand from IEEE 754 (finite values: what PyTorch's
// `tensor.to(torch.bfloat16 / torch.float16)` gives), not computed by a second implementation;
// NaN patterns are PyTorch's x86 kernels' (tests/interop/quant_interop.sh checks them).
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <limits>

#include "core/float_convert.h"

namespace ckconv {
namespace {

float from_bits(uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, 4);
  return value;
}

TEST_CASE("bf16_from_f32 rounds to nearest, ties to even") {
  CHECK(bf16_from_f32(1.0f) == 0x3F80);
  CHECK(bf16_from_f32(-2.0f) == 0xC000);
  CHECK(bf16_from_f32(0.0f) == 0x0000);
  CHECK(bf16_from_f32(-0.0f) == 0x8000);
  CHECK(bf16_from_f32(from_bits(0x3F808000)) == 0x3F80);  // 1 + 2^-8: tie, even stays
  CHECK(bf16_from_f32(from_bits(0x3F818000)) == 0x3F82);  // 1 + 3 * 2^-8: tie, odd rounds up
  CHECK(bf16_from_f32(from_bits(0x3F808001)) == 0x3F81);  // just above the tie
  CHECK(bf16_from_f32(from_bits(0x3F807FFF)) == 0x3F80);  // just below the tie
  CHECK(bf16_from_f32(from_bits(0x7F7FFFFF)) == 0x7F80);  // largest float overflows to inf
  CHECK(bf16_from_f32(std::numeric_limits<float>::infinity()) == 0x7F80);
  CHECK(bf16_from_f32(-std::numeric_limits<float>::infinity()) == 0xFF80);
  CHECK(bf16_from_f32(from_bits(0x00000001)) == 0x0000);  // smallest subnormal: to zero
  CHECK(bf16_from_f32(from_bits(0x00018000)) == 0x0002);  // subnormal tie, odd rounds up
  // NaN stays NaN, including a signalling NaN whose payload lives only in the low bits that
  // are cut off; PyTorch's vectorized kernel writes every NaN as 0xFFFF.
  for (uint32_t nan_bits : {0x7FC00000u, 0xFFC00000u, 0x7F800001u})
    CHECK(bf16_from_f32(from_bits(nan_bits)) == 0xFFFF);
}

TEST_CASE("f16_from_f32 rounds to nearest, ties to even, with subnormals and overflow") {
  CHECK(f16_from_f32(1.0f) == 0x3C00);
  CHECK(f16_from_f32(-2.0f) == 0xC000);
  CHECK(f16_from_f32(0.0f) == 0x0000);
  CHECK(f16_from_f32(-0.0f) == 0x8000);
  CHECK(f16_from_f32(from_bits(0x3F801000)) == 0x3C00);  // 1 + 2^-11: tie, even stays
  CHECK(f16_from_f32(from_bits(0x3F803000)) == 0x3C02);  // 1 + 3 * 2^-11: tie, odd rounds up
  CHECK(f16_from_f32(from_bits(0x3F801001)) == 0x3C01);  // just above the tie
  CHECK(f16_from_f32(65504.0f) == 0x7BFF);               // largest half
  CHECK(f16_from_f32(65519.0f) == 0x7BFF);               // below the midpoint to 2^16
  CHECK(f16_from_f32(65520.0f) == 0x7C00);               // the midpoint: ties to even = inf
  CHECK(f16_from_f32(-1e9f) == 0xFC00);
  CHECK(f16_from_f32(std::numeric_limits<float>::infinity()) == 0x7C00);
  CHECK(f16_from_f32(6.103515625e-05f) == 0x0400);          // 2^-14, smallest normal
  CHECK(f16_from_f32(5.9604644775390625e-08f) == 0x0001);   // 2^-24, smallest subnormal
  CHECK(f16_from_f32(2.98023223876953125e-08f) == 0x0000);  // 2^-25: tie, even is zero
  CHECK(f16_from_f32(8.94069671630859375e-08f) == 0x0002);  // 1.5 * 2^-24: tie, to even
  CHECK(f16_from_f32(-5.9604644775390625e-08f) == 0x8001);
  CHECK(f16_from_f32(from_bits(0x387FE000)) == 0x0400);  // rounds up out of the subnormals
  CHECK(f16_from_f32(from_bits(0x7FC00000)) == 0x7E00);
  CHECK(f16_from_f32(from_bits(0xFFC00000)) == 0xFE00);
}

}  // namespace
}  // namespace ckconv
