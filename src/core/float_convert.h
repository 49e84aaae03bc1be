// Element conversions between floating dtypes, and the decoding of the quantized formats HF
// releases ship (float8_e4m3fn block-scaled weights, MXFP4 experts). Every conversion gives
// the bits PyTorch gives on x86 CPUs for a contiguous tensor (`tensor.to(dtype)`, which takes
// the vectorized copy kernel): round to nearest, ties to even; overflow to ±inf; subnormals
// kept; NaN as docs/formats.md "Casts" says. Checked bit for bit against PyTorch by
// tests/interop/dtype_interop_test.sh.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace ckconv {

// True for the dtypes convert_floats handles: F64, F32, BF16, F16.
bool is_castable_float(DType dtype);

// Converts `count` elements of `from` at `in` to `to` at `out` (both castable; the buffers
// do not overlap). Equal dtypes copy the bytes.
void convert_floats(DType from, const uint8_t* in, DType to, uint8_t* out, int64_t count);

// f32 -> bf16 as PyTorch's vectorized x86 kernel: RNE; every NaN becomes 0xFFFF.
uint16_t bf16_from_f32(float value);
// f32 -> f16 as F16C (`vcvtps2ph`, round to nearest even): RNE, overflow to ±inf, subnormals;
// a NaN keeps its sign and the top 9 bits of its payload, quieted.
uint16_t f16_from_f32(float value);
float f32_from_bf16(uint16_t bits);
// Exact; a NaN keeps its sign and payload, quieted (as F16C `vcvtph2ps`).
float f32_from_f16(uint16_t bits);

// float8_e4m3fn (s eeee mmm, bias 7, no infinities; 0x7F/0xFF are NaN) -> f32, exact.
float f32_from_fp8_e4m3(uint8_t bits);

// One MXFP4 (OCP MX, E2M1 element) value: fp4 code `code` (0..15) times 2^(scale - 127),
// `scale` the E8M0 byte, computed in f32 as transformers' convert_moe_packed_tensors does
// (LUT value times pow(2, scale - 127)). Scale 255 gives ±inf, or NaN for a zero code.
float f32_from_mxfp4(uint8_t code, uint8_t scale);

// Bulk kernels, bit for bit the per-element functions above, written as explicit 4-lane
// vector code (GCC/Clang vector extensions) so that they vectorise at -O2 on any target:
// - `count` f32 values at `in` to bf16 at `out` (bf16_from_f32 each; any alignment);
void bf16_from_f32_n(const uint8_t* in, uint8_t* out, int64_t count);
// - out[i] = f32_from_fp8_e4m3(in[i]) * scale, the product rounded once in f32 (a NaN
//   code gives the decoded NaN whatever the scale).
void f32_from_fp8_e4m3_scaled(const uint8_t* in, float scale, float* out, int64_t count);

}  // namespace ckconv
