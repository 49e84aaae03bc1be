// Conversions through f32, as PyTorch's CPU copy kernels do (observed on PyTorch 2.14, x86
// AVX2/AVX512): decode to f32 (exact), then encode. Double rounding from f64 to bf16/f16 is
// PyTorch's too (it converts f64 to f32 first).
#include "core/float_convert.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.h"

namespace ckconv {
namespace {

uint32_t bits_of(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  return bits;
}

float float_of(uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, 4);
  return value;
}

uint16_t load16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

float load_as_f32(DType dtype, const uint8_t* p) {
  switch (dtype) {
    case DType::kF32: {
      float v;
      std::memcpy(&v, p, 4);
      return v;
    }
    case DType::kBF16:
      return f32_from_bf16(load16(p));
    case DType::kF16:
      return f32_from_f16(load16(p));
    default: {
      double v;
      std::memcpy(&v, p, 8);
      return static_cast<float>(v);  // hardware: RNE, NaN quieted keeping its top payload bits
    }
  }
}

// 4-lane vectors: the width of the baseline x86-64 (SSE2) registers, so that no operation
// is split (GCC splits wider vectors' comparisons into scalar code there). Comparisons give
// 0 or all ones per lane, which select lanes by masking. Lane shuffles use
// __builtin_shufflevector (GCC 12, Clang).
static_assert(std::endian::native == std::endian::little, "lane and byte order below");
using U16x8 = uint16_t __attribute__((vector_size(16)));
using U32x4 = uint32_t __attribute__((vector_size(16)));
using I32x4 = int32_t __attribute__((vector_size(16)));
using F32x4 = float __attribute__((vector_size(16)));

// f32_from_fp8_e4m3(b) * scale for the fp8 bytes b of four lanes (each 0..255).
inline U32x4 fp8_scaled_lanes(U32x4 b, F32x4 scale) {
  const U32x4 sign = (b & 0x80u) << 24;
  // Normal codes: exponent rebased from 7 to 127, mantissa moved up; subnormal ones
  // (exponent 0): mantissa * 2^-9, exact through an int-to-float conversion.
  const U32x4 normal = ((b & 0x7Fu) << 20) + (120u << 23);
  const F32x4 small = __builtin_convertvector(reinterpret_cast<I32x4>(b & 7u), F32x4);
  const U32x4 subnormal = reinterpret_cast<U32x4>(small * 0.001953125f);
  const U32x4 is_subnormal = reinterpret_cast<U32x4>((b & 0x78u) == 0u);
  const U32x4 decoded = sign | (normal & ~is_subnormal) | (subnormal & is_subnormal);
  const U32x4 product = reinterpret_cast<U32x4>(reinterpret_cast<F32x4>(decoded) * scale);
  const U32x4 nan = reinterpret_cast<U32x4>((b & 0x7Fu) == 0x7Fu);
  return (product & ~nan) | ((sign | 0x7FF00000u) & nan);
}

// bf16_from_f32 of four lanes of f32 bits, in the low half of each lane.
inline U32x4 bf16_lanes(U32x4 bits) {
  const U32x4 nan = reinterpret_cast<U32x4>((bits & 0x7FFFFFFFu) > 0x7F800000u);
  return ((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16) | nan;  // NaN: 0xFFFF
}

}  // namespace

bool is_castable_float(DType dtype) {
  return dtype == DType::kF64 || dtype == DType::kF32 || dtype == DType::kBF16 ||
         dtype == DType::kF16;
}

uint16_t bf16_from_f32(float value) {
  if (std::isnan(value)) return 0xFFFF;
  uint32_t bits = bits_of(value);
  bits += 0x7FFF + ((bits >> 16) & 1);
  return static_cast<uint16_t>(bits >> 16);
}

uint16_t f16_from_f32(float value) {
  const uint32_t bits = bits_of(value);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000);
  if (std::isnan(value)) return sign | 0x7E00 | static_cast<uint16_t>((bits & 0x7FFFFF) >> 13);
  const float magnitude = std::fabs(value);
  if (magnitude >= 65520.0f) return sign | 0x7C00;
  if (magnitude < 6.103515625e-05f)  // subnormal: multiples of 2^-24, ties to even (exact product)
    return sign | static_cast<uint16_t>(std::nearbyint(magnitude * 16777216.0f));
  const uint32_t mantissa = bits & 0x7FFFFF;
  const int exponent = static_cast<int>((bits >> 23) & 0xFF) - 127 + 15;
  uint32_t half = (static_cast<uint32_t>(exponent) << 10) | (mantissa >> 13);
  const uint32_t rest = mantissa & 0x1FFF;
  if (rest > 0x1000 || (rest == 0x1000 && (half & 1))) ++half;  // may carry into the exponent
  return sign | static_cast<uint16_t>(half);
}

float f32_from_bf16(uint16_t bits) {
  return float_of(static_cast<uint32_t>(bits) << 16);
}

float f32_from_f16(uint16_t bits) {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x8000) << 16;
  const uint32_t exponent = (bits >> 10) & 0x1F;
  const uint32_t mantissa = bits & 0x3FF;
  if (exponent == 0x1F)
    return float_of(sign | 0x7F800000 | (mantissa != 0 ? 0x400000 | (mantissa << 13) : 0));
  if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24, exact in f32
    const float magnitude = static_cast<float>(mantissa) * 5.9604644775390625e-08f;
    return sign ? -magnitude : magnitude;
  }
  return float_of(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

float f32_from_fp8_e4m3(uint8_t bits) {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x80) << 24;
  const uint32_t exponent = (bits >> 3) & 0xF;
  const uint32_t mantissa = bits & 0x7;
  if ((bits & 0x7F) == 0x7F) return float_of(sign | 0x7FF00000);  // PyTorch's NaN bits
  if (exponent == 0) {  // zero or subnormal: mantissa * 2^-9
    const float magnitude = static_cast<float>(mantissa) * 0.001953125f;
    return sign ? -magnitude : magnitude;
  }
  return float_of(sign | ((exponent + 120) << 23) | (mantissa << 20));
}

float f32_from_mxfp4(uint8_t code, uint8_t scale) {
  static constexpr float kValues[16] = {+0.0f, +0.5f, +1.0f, +1.5f, +2.0f, +3.0f, +4.0f, +6.0f,
                                        -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};
  // 2^(scale - 127) in f32: subnormal below scale 1, infinite at 255; exact otherwise.
  const float factor = scale == 255 ? INFINITY
                       : scale == 0 ? float_of(0x00400000)
                                    : float_of(static_cast<uint32_t>(scale) << 23);
  return kValues[code & 0xF] * factor;
}

void bf16_from_f32_n(const uint8_t* in, uint8_t* out, int64_t count) {
  int64_t i = 0;
  for (; i + 8 <= count; i += 8) {
    U32x4 low, high;
    std::memcpy(&low, in + i * 4, sizeof low);
    std::memcpy(&high, in + i * 4 + 16, sizeof high);
    const U16x8 narrow = __builtin_shufflevector(reinterpret_cast<U16x8>(bf16_lanes(low)),
                                                 reinterpret_cast<U16x8>(bf16_lanes(high)), 0, 2, 4,
                                                 6, 8, 10, 12, 14);
    std::memcpy(out + i * 2, &narrow, sizeof narrow);
  }
  for (; i < count; ++i) {
    float value;
    std::memcpy(&value, in + i * 4, 4);
    const uint16_t v = bf16_from_f32(value);
    std::memcpy(out + i * 2, &v, 2);
  }
}

void f32_from_fp8_e4m3_scaled(const uint8_t* in, float scale, float* out, int64_t count) {
  const F32x4 scales = {scale, scale, scale, scale};
  int64_t i = 0;
  for (; i + 16 <= count; i += 16) {
    // Byte k of each 32-bit lane j is element 4j + k: decode the four byte positions, then
    // transpose the 4x4 result back to element order.
    U32x4 word;
    std::memcpy(&word, in + i, sizeof word);
    const U32x4 r0 = fp8_scaled_lanes(word & 0xFFu, scales);
    const U32x4 r1 = fp8_scaled_lanes((word >> 8) & 0xFFu, scales);
    const U32x4 r2 = fp8_scaled_lanes((word >> 16) & 0xFFu, scales);
    const U32x4 r3 = fp8_scaled_lanes(word >> 24, scales);
    const U32x4 t0 = __builtin_shufflevector(r0, r1, 0, 4, 1, 5);
    const U32x4 t1 = __builtin_shufflevector(r2, r3, 0, 4, 1, 5);
    const U32x4 t2 = __builtin_shufflevector(r0, r1, 2, 6, 3, 7);
    const U32x4 t3 = __builtin_shufflevector(r2, r3, 2, 6, 3, 7);
    const U32x4 ordered[4] = {
        __builtin_shufflevector(t0, t1, 0, 1, 4, 5), __builtin_shufflevector(t0, t1, 2, 3, 6, 7),
        __builtin_shufflevector(t2, t3, 0, 1, 4, 5), __builtin_shufflevector(t2, t3, 2, 3, 6, 7)};
    std::memcpy(out + i, ordered, sizeof ordered);
  }
  for (; i < count; ++i) out[i] = f32_from_fp8_e4m3(in[i]) * scale;
}

void convert_floats(DType from, const uint8_t* in, DType to, uint8_t* out, int64_t count) {
  if (!is_castable_float(from) || !is_castable_float(to))
    fail(ErrorKind::kInternal,
         "convert_floats: " + std::string(dtype_name(from)) + " -> " + std::string(dtype_name(to)));
  const int in_size = dtype_size(from);
  if (from == to) {
    std::memcpy(out, in, static_cast<size_t>(count * in_size));
    return;
  }
  if (from == DType::kF32 && to == DType::kBF16) {
    bf16_from_f32_n(in, out, count);
    return;
  }
  for (int64_t i = 0; i < count; ++i, in += in_size) {
    const float value = load_as_f32(from, in);
    switch (to) {
      case DType::kF32:
        std::memcpy(out, &value, 4);
        out += 4;
        break;
      case DType::kBF16: {
        // PyTorch converts f16 to bf16 with the scalar kernel, whose NaN is 0x7FC0.
        const uint16_t v =
            from == DType::kF16 && std::isnan(value) ? uint16_t{0x7FC0} : bf16_from_f32(value);
        std::memcpy(out, &v, 2);
        out += 2;
        break;
      }
      case DType::kF16: {
        const uint16_t v = f16_from_f32(value);
        std::memcpy(out, &v, 2);
        out += 2;
        break;
      }
      default: {
        const double v = value;  // hardware: exact, NaN quieted
        std::memcpy(out, &v, 8);
        out += 8;
        break;
      }
    }
  }
}

}  // namespace ckconv
