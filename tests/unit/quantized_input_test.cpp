// The dequantization kernels and PyTorch-compatible casts (core/float_convert.h,
// pipeline/quantized_input.h). Bit-exactness against PyTorch and transformers themselves is
// checked by tests/interop/quant_interop.sh; these pin the formulas.
#include "pipeline/quantized_input.h"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/float_convert.h"

namespace ckconv {
namespace {

uint32_t bits(float value) {
  uint32_t out;
  std::memcpy(&out, &value, 4);
  return out;
}

float from_bits(uint32_t value) {
  float out;
  std::memcpy(&out, &value, 4);
  return out;
}

TEST_CASE("float8_e4m3fn decodes exactly, NaN as PyTorch") {
  CHECK(f32_from_fp8_e4m3(0x00) == 0.0f);
  CHECK(bits(f32_from_fp8_e4m3(0x80)) == 0x80000000u);  // -0
  CHECK(f32_from_fp8_e4m3(0x38) == 1.0f);               // e = 7, m = 0
  CHECK(f32_from_fp8_e4m3(0x7E) == 448.0f);             // largest finite
  CHECK(f32_from_fp8_e4m3(0xFE) == -448.0f);
  CHECK(f32_from_fp8_e4m3(0x01) == std::ldexp(1.0f, -9));  // smallest subnormal
  CHECK(f32_from_fp8_e4m3(0x07) == 7 * std::ldexp(1.0f, -9));
  CHECK(f32_from_fp8_e4m3(0x08) == std::ldexp(1.0f, -6));  // smallest normal
  CHECK(bits(f32_from_fp8_e4m3(0x7F)) == 0x7FF00000u);
  CHECK(bits(f32_from_fp8_e4m3(0xFF)) == 0xFFF00000u);
}

TEST_CASE("MXFP4 values: FP4 code times 2^(scale - 127)") {
  CHECK(f32_from_mxfp4(0x1, 127) == 0.5f);
  CHECK(f32_from_mxfp4(0x7, 127) == 6.0f);
  CHECK(f32_from_mxfp4(0xF, 128) == -12.0f);
  CHECK(bits(f32_from_mxfp4(0x8, 127)) == 0x80000000u);     // -0
  CHECK(f32_from_mxfp4(0x2, 0) == std::ldexp(1.0f, -127));  // f32 subnormal, exact
  CHECK(f32_from_mxfp4(0x1, 0) == std::ldexp(1.0f, -128));
  CHECK(f32_from_mxfp4(0x7, 254) == 6.0f * std::ldexp(1.0f, 127));
  CHECK(std::isinf(f32_from_mxfp4(0x1, 255)));
  CHECK(std::isnan(f32_from_mxfp4(0x0, 255)));
}

TEST_CASE("dequantize_fp8_row: one scale per block of columns, partial last block") {
  const uint8_t fp8[5] = {0x38, 0x40, 0xB8, 0x38, 0x38};  // 1, 2, -1, 1, 1
  const float scales[3] = {0.5f, 4.0f, -2.0f};
  float out[5];
  dequantize_fp8_row(fp8, scales, 1, 5, 2, out);  // columns 1..5 with blocks of 2
  CHECK(out[0] == 0.5f);                          // column 1: block 0
  CHECK(out[1] == 8.0f);                          // column 2: block 1
  CHECK(out[2] == -4.0f);                         // column 3: block 1
  CHECK(out[3] == -2.0f);                         // column 4: block 2
  CHECK(out[4] == -2.0f);                         // column 5: block 2
}

TEST_CASE("dequantize_mxfp4: low nibble first, one scale per 32 elements, any start") {
  std::vector<uint8_t> blocks(32), scales = {127, 128};
  for (int i = 0; i < 32; ++i) blocks[i] = static_cast<uint8_t>((i % 16) | ((15 - i % 16) << 4));
  std::vector<float> all(64);
  dequantize_mxfp4(blocks.data(), scales.data(), 0, 64, all.data());
  CHECK(all[0] == 0.0f);    // byte 0 low nibble: code 0
  CHECK(all[1] == -6.0f);   // byte 0 high nibble: code 15
  CHECK(all[2] == 0.5f);    // byte 1 low: code 1
  CHECK(all[32] == 0.0f);   // byte 16 low: code 0, scale 2^1
  CHECK(all[35] == -8.0f);  // byte 17 high: code 14 (-4) * 2
  std::vector<float> part(7);
  dequantize_mxfp4(blocks.data() + 14, scales.data(), 29, 7, part.data());  // starts odd
  for (int i = 0; i < 7; ++i) CHECK(bits(part[i]) == bits(all[29 + i]));
}

TEST_CASE("bulk kernels give the per-element functions' bits, any length and alignment") {
  // Every fp8 code, at scales that keep, overflow and make subnormal the products.
  std::vector<uint8_t> codes(256 + 3);
  for (size_t i = 0; i < codes.size(); ++i) codes[i] = static_cast<uint8_t>(i * 37 + 5);
  for (const float scale : {1.0f, 0.5f, -3.0e-3f, std::ldexp(1.0f, -140), std::ldexp(1.0f, 120),
                            std::ldexp(1.0f, -126) * 0.75f}) {
    for (const size_t start : {size_t{0}, size_t{3}}) {
      const size_t count = codes.size() - start;
      std::vector<float> out(count);
      f32_from_fp8_e4m3_scaled(codes.data() + start, scale, out.data(),
                               static_cast<int64_t>(count));
      for (size_t i = 0; i < count; ++i)
        CHECK(bits(out[i]) == bits(f32_from_fp8_e4m3(codes[start + i]) * scale));
    }
  }
  // f32 -> bf16: ties, overflow, every NaN kind, subnormals, signs, unaligned in and out.
  std::vector<uint32_t> values = {0x3F808000, 0x3F818000, 0x3F807FFF, 0x7F7FFFFF, 0xFF7FFFFF,
                                  0x7F800000, 0xFF800000, 0x7F800001, 0xFFC00000, 0x7FFFFFFF,
                                  0x00008000, 0x00018000, 0x80000001, 0x00000000, 0x80000000};
  uint32_t state = 12345;
  while (values.size() < 203) values.push_back(state = state * 1664525u + 1013904223u);
  std::vector<uint8_t> in(values.size() * 4 + 1), bf16(values.size() * 2 + 1);
  std::memcpy(in.data() + 1, values.data(), values.size() * 4);
  bf16_from_f32_n(in.data() + 1, bf16.data() + 1, static_cast<int64_t>(values.size()));
  for (size_t i = 0; i < values.size(); ++i) {
    uint16_t got;
    std::memcpy(&got, bf16.data() + 1 + 2 * i, 2);
    CHECK(got == bf16_from_f32(from_bits(values[i])));
  }
}

TEST_CASE("dequantize_mxfp4: every start and length within two groups") {
  std::vector<uint8_t> blocks(48), scales = {120, 131, 0};
  for (size_t i = 0; i < blocks.size(); ++i) blocks[i] = static_cast<uint8_t>(i * 73 + 11);
  std::vector<float> all(96);
  dequantize_mxfp4(blocks.data(), scales.data(), 0, 96, all.data());
  for (int i = 0; i < 96; ++i) {
    const uint8_t byte = blocks[i / 2];
    CHECK(bits(all[i]) == bits(f32_from_mxfp4(static_cast<uint8_t>(i % 2 ? byte >> 4 : byte & 0xF),
                                              scales[i / 32])));
  }
  for (int first = 0; first < 70; ++first)
    for (int count = 1; first + count <= 96; count += 5) {
      std::vector<float> part(static_cast<size_t>(count));
      dequantize_mxfp4(blocks.data() + first / 2, scales.data() + first / 32, first, count,
                       part.data());
      for (int i = 0; i < count; ++i) CHECK(bits(part[i]) == bits(all[first + i]));
    }
}

TEST_CASE("casts round as PyTorch: RNE, NaN patterns of its x86 kernels") {
  CHECK(bf16_from_f32(from_bits(0x3F808000)) == 0x3F80);  // tie to even
  CHECK(bf16_from_f32(from_bits(0x3F818000)) == 0x3F82);
  CHECK(bf16_from_f32(from_bits(0x7F7FFFFF)) == 0x7F80);  // overflow to inf
  CHECK(bf16_from_f32(from_bits(0xFFC00000)) == 0xFFFF);  // every NaN
  CHECK(bf16_from_f32(from_bits(0x7F800001)) == 0xFFFF);
  CHECK(f16_from_f32(from_bits(0x7FC00000)) == 0x7E00);
  CHECK(f16_from_f32(from_bits(0x7FA12345)) == 0x7F09);  // quieted, top payload bits kept
  CHECK(f16_from_f32(from_bits(0xFFBFFFFF)) == 0xFFFF);
  CHECK(f16_from_f32(65519.0f) == 0x7BFF);
  CHECK(f16_from_f32(65520.0f) == 0x7C00);
  CHECK(f16_from_f32(std::ldexp(1.0f, -24)) == 0x0001);
  CHECK(f16_from_f32(std::ldexp(1.0f, -25)) == 0x0000);  // tie to even (zero)
  CHECK(bits(f32_from_f16(0x7C01)) == 0x7FC02000u);
  CHECK(bits(f32_from_f16(0x0001)) == bits(std::ldexp(1.0f, -24)));
  CHECK(bits(f32_from_bf16(0x7F81)) == 0x7F810000u);  // not quieted

  const uint16_t f16_nan = 0xFC01;
  uint16_t out = 0;
  convert_floats(DType::kF16, reinterpret_cast<const uint8_t*>(&f16_nan), DType::kBF16,
                 reinterpret_cast<uint8_t*>(&out), 1);
  CHECK(out == 0x7FC0);  // f16 -> bf16 goes through PyTorch's scalar kernel
  const double near_tie = 1.0 + std::ldexp(1.0, -8) + std::ldexp(1.0, -30);
  convert_floats(DType::kF64, reinterpret_cast<const uint8_t*>(&near_tie), DType::kBF16,
                 reinterpret_cast<uint8_t*>(&out), 1);
  CHECK(out == 0x3F80);  // double rounding through f32, as PyTorch
  const uint16_t bf16_snan = 0x7F81;
  double wide = 0;
  convert_floats(DType::kBF16, reinterpret_cast<const uint8_t*>(&bf16_snan), DType::kF64,
                 reinterpret_cast<uint8_t*>(&wide), 1);
  uint64_t wide_bits;
  std::memcpy(&wide_bits, &wide, 8);
  CHECK(wide_bits == 0x7FF8200000000000ull);
}

}  // namespace
}  // namespace ckconv
