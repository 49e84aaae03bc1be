// The quantized tensors of published HF releases, decoded while streaming (docs/formats.md
// "Quantized HF inputs"). Two named decoding rules run on an HF input before the family's
// rules see it:
// - fp8 block dequantization (DeepSeek-V3/R1, quantization_config.quant_method "fp8"): a
//   F8_E4M3 weight `X` [rows, cols] with its F32 `X_scale_inv` [ceil(rows/b0), ceil(cols/b1)]
//   becomes `X` = float32(fp8) * scale_inv[r / b0][c / b1], computed in f32;
// - MXFP4 dequantization (gpt-oss, quant_method "mxfp4"): U8 `X_blocks` [..., G, 16] with U8
//   `X_scales` [..., G] becomes `X_blocks` [..., G * 32] (the [E, out, in] layout torchtitan
//   calls mlp1_weight_EGD / mlp2_weight_EDF): element 2j of a 16-byte block is its byte j's
//   low nibble, 2j + 1 the high one, value FP4(code) * 2^(scale - 127).
// Each decoded tensor replaces its group in the catalog as a float32 tensor produced by a
// generator (SourceRef::generate), so the family rules, the layout recipes and the
// block-bounded streaming apply unchanged; the plan then rounds them to the output dtype
// (bf16 unless --dtype says otherwise). Groups with a missing or mis-shaped part are kBadInput
// naming both keys; a non-finite fp8 scale or an MXFP4 scale byte of 255 (NaN in E8M0) fails
// the conversion when it is read.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "formats/catalog.h"
#include "pipeline/mapped_checkpoint.h"

namespace ckconv {

struct QuantizationOptions {
  int64_t fp8_block_rows = 128;  // quantization_config.weight_block_size
  int64_t fp8_block_cols = 128;
};

using ElementGenerator = std::function<void(int64_t first, int64_t count, uint8_t* out)>;

struct DecodedInput {
  Catalog catalog;  // the input's, each quantized group replaced by its float32 tensor
  std::map<std::string, ElementGenerator> generators;  // by decoded tensor name
  std::vector<std::string> consumed;                   // report: "key: why"
};

// True when the catalog holds F8_E4M3 tensors or U8 `*_blocks` tensors.
bool has_quantized_tensors(const Catalog& catalog);

// The decoded view of `input` (which must outlive it). Throws kBadInput listing every
// incomplete or mis-shaped group.
DecodedInput decode_quantized_input(const MappedCheckpoint& input,
                                    const QuantizationOptions& options);

// The kernels, on whole rows: out[i] = fp8[i] * scales[i / block_cols] for `count` elements
// of one row; and the MXFP4 elements [first, first + count) of a flat [rows, G * 32] tensor
// from its packed bytes (`blocks` starting at byte first / 2) and scales (starting at
// first / 32), in any alignment.
void dequantize_fp8_row(const uint8_t* fp8, const float* scales, int64_t first_col, int64_t count,
                        int64_t block_cols, float* out);
void dequantize_mxfp4(const uint8_t* blocks, const uint8_t* scales, int64_t first, int64_t count,
                      float* out);

}  // namespace ckconv
