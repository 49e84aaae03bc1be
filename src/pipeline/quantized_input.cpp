#include "pipeline/quantized_input.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "core/error.h"
#include "core/float_convert.h"

namespace ckconv {
namespace {

constexpr const char* kScaleSuffix = "_scale_inv";
constexpr const char* kBlocksSuffix = "_blocks";
constexpr const char* kScalesSuffix = "_scales";

bool quant_has_suffix(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string quant_strip_suffix(const std::string& text, const std::string& suffix) {
  return text.substr(0, text.size() - suffix.size());
}

int64_t quant_ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

std::string quant_describe(const CatalogTensor& tensor) {
  return tensor.name + " " + std::string(dtype_name(tensor.dtype)) + " " +
         shape_to_string(tensor.shape);
}

// Reads elements [first, first + count) of `tensor` into a thread-local buffer, which the
// caller consumes at once. A tensor stored as one run (every safetensors tensor) is read
// without its mapping (MappedFile::read_buffered), so that peak RSS stays at the buffers;
// others go through the mapping and release their pages.
const uint8_t* quant_read(const MappedCheckpoint& input, const CatalogTensor& tensor, int64_t first,
                          int64_t count, std::vector<uint8_t>& buffer) {
  const int64_t element_size = dtype_size(tensor.dtype);
  buffer.resize(static_cast<size_t>(count * element_size));
  uint64_t offset = 0;
  const uint8_t* base = input.contiguous_data(tensor);
  const MappedFile* file =
      base == nullptr ? nullptr : input.locate(base + first * element_size, &offset);
  if (file != nullptr) {
    file->read_buffered(offset, buffer.size(), buffer.data());
    return buffer.data();
  }
  input.read_elements(tensor, first, count, buffer.data());
  input.release_elements(tensor, first, count);
  return buffer.data();
}

// Elements [first, first + count) of the dequantized fp8 weight, row by row.
ElementGenerator fp8_generator(const MappedCheckpoint& input, const CatalogTensor& weight,
                               const CatalogTensor& scale, const QuantizationOptions& options) {
  return [&input, &weight, &scale, options](int64_t first, int64_t count, uint8_t* out) {
    if (count <= 0) return;
    thread_local std::vector<uint8_t> bytes, scale_row;
    const int64_t cols = weight.shape[1];
    const int64_t scale_cols = scale.shape[1];
    const uint8_t* fp8 = quant_read(input, weight, first, count, bytes);
    // The scale rows of every weight row in the range, read once per call rather than once
    // per weight row.
    const int64_t first_scale_row = first / cols / options.fp8_block_rows;
    const int64_t scale_rows =
        (first + count - 1) / cols / options.fp8_block_rows - first_scale_row + 1;
    const float* scale_block = reinterpret_cast<const float*>(
        quant_read(input, scale, first_scale_row * scale_cols, scale_rows * scale_cols, scale_row));
    float* values = reinterpret_cast<float*>(out);
    for (int64_t done = 0; done < count;) {
      const int64_t row = (first + done) / cols, col = (first + done) % cols;
      const int64_t n = std::min(count - done, cols - col);
      const float* scales =
          scale_block + (row / options.fp8_block_rows - first_scale_row) * scale_cols;
      for (int64_t s = col / options.fp8_block_cols; s <= (col + n - 1) / options.fp8_block_cols;
           ++s)
        if (!std::isfinite(scales[s]))
          fail_input(scale.name + "[" + std::to_string(row / options.fp8_block_rows) + ", " +
                     std::to_string(s) + "] is " + std::to_string(scales[s]) +
                     ": a non-finite FP8 block scale (the dequantized weights of " + weight.name +
                     " would be NaN or infinite)");
      dequantize_fp8_row(fp8 + done, scales, col, n, options.fp8_block_cols, values + done);
      done += n;
    }
  };
}

ElementGenerator mxfp4_generator(const MappedCheckpoint& input, const CatalogTensor& blocks,
                                 const CatalogTensor& scales) {
  return [&input, &blocks, &scales](int64_t first, int64_t count, uint8_t* out) {
    thread_local std::vector<uint8_t> packed, exponents;
    const int64_t last = first + count - 1;
    const uint8_t* bytes = quant_read(input, blocks, first / 2, last / 2 - first / 2 + 1, packed);
    const uint8_t* scale =
        quant_read(input, scales, first / 32, last / 32 - first / 32 + 1, exponents);
    for (int64_t s = 0; s <= last / 32 - first / 32; ++s)
      if (scale[s] == 255)
        fail_input(scales.name + " holds the E8M0 NaN scale 255 (flat index " +
                   std::to_string(first / 32 + s) + "): the dequantized weights of " + blocks.name +
                   " would be NaN or infinite");
    dequantize_mxfp4(bytes, scale, first, count, reinterpret_cast<float*>(out));
  };
}

}  // namespace

void dequantize_fp8_row(const uint8_t* fp8, const float* scales, int64_t first_col, int64_t count,
                        int64_t block_cols, float* out) {
  for (int64_t i = 0; i < count;) {  // one scale block (or the part of it in range) at a time
    const int64_t block = (first_col + i) / block_cols;
    const int64_t n = std::min(count - i, (block + 1) * block_cols - (first_col + i));
    f32_from_fp8_e4m3_scaled(fp8 + i, scales[block], out + i, n);
    i += n;
  }
}

void dequantize_mxfp4(const uint8_t* blocks, const uint8_t* scales, int64_t first, int64_t count,
                      float* out) {
  // Every (scale, code) value, computed once by f32_from_mxfp4 (16 KiB): a lookup per element.
  static const std::vector<float> table = [] {
    std::vector<float> values(256 * 16);
    for (int scale = 0; scale < 256; ++scale)
      for (int code = 0; code < 16; ++code)
        values[scale * 16 + code] =
            f32_from_mxfp4(static_cast<uint8_t>(code), static_cast<uint8_t>(scale));
    return values;
  }();
  // One element at a time up to a byte boundary and over the tail; whole bytes (two
  // elements, low nibble first) within each scale group in between.
  const int64_t end = first + count;
  // Element i's byte and scale: blocks[i / 2 - first / 2], scales[i / 32 - first / 32].
  auto one = [&](int64_t i) {
    const uint8_t byte = blocks[i / 2 - first / 2];
    out[i - first] = table[scales[i / 32 - first / 32] * 16 + ((i & 1) ? byte >> 4 : byte & 0xF)];
  };
  int64_t i = first;
  if (i < end && (i & 1)) one(i++);
  while (end - i >= 2) {
    const int64_t group_end = std::min(end & ~int64_t{1}, (i / 32 + 1) * 32);
    const float* values = table.data() + scales[i / 32 - first / 32] * 16;
    const uint8_t* bytes = blocks + (i / 2 - first / 2);
    float* target = out + (i - first);
    const int64_t pairs = (group_end - i) / 2;
    for (int64_t k = 0; k < pairs; ++k) {
      target[2 * k] = values[bytes[k] & 0xF];
      target[2 * k + 1] = values[bytes[k] >> 4];
    }
    i = group_end;
  }
  if (i < end) one(i);
}

bool has_quantized_tensors(const Catalog& catalog) {
  for (const CatalogTensor& tensor : catalog.tensors)
    if (tensor.dtype == DType::kF8_E4M3 ||
        (tensor.dtype == DType::kU8 && quant_has_suffix(tensor.name, kBlocksSuffix)))
      return true;
  return false;
}

namespace {

// One catalog tensor of the input, decoded (when it heads a quantized group) or kept.
struct Decoder {
  const MappedCheckpoint& input;
  const QuantizationOptions& options;
  std::map<std::string, const CatalogTensor*> by_name;
  DecodedInput& out;
  std::vector<std::string> problems;

  const CatalogTensor* find(const std::string& name) const {
    auto found = by_name.find(name);
    return found == by_name.end() ? nullptr : found->second;
  }

  void add_decoded(const CatalogTensor& head, Shape shape, ElementGenerator generator) {
    out.catalog.tensors.push_back(CatalogTensor{head.name, DType::kF32, std::move(shape), {}});
    out.generators[head.name] = std::move(generator);
  }

  void fp8_weight(const CatalogTensor& weight) {
    const std::string scale_name = weight.name + kScaleSuffix;
    const CatalogTensor* scale = find(scale_name);
    if (scale == nullptr) {
      problems.push_back(quant_describe(weight) + " has no block scale " + scale_name);
      return;
    }
    if (weight.shape.size() != 2) {
      problems.push_back(quant_describe(weight) + ": FP8 block-scaled weights must be 2-D");
      return;
    }
    const Shape expected{quant_ceil_div(weight.shape[0], options.fp8_block_rows),
                         quant_ceil_div(weight.shape[1], options.fp8_block_cols)};
    if (scale->dtype != DType::kF32 || scale->shape != expected) {
      problems.push_back(quant_describe(*scale) + ": the block scale of " + quant_describe(weight) +
                         " must be F32 " + shape_to_string(expected) + " (blocks of " +
                         std::to_string(options.fp8_block_rows) + "x" +
                         std::to_string(options.fp8_block_cols) + ")");
      return;
    }
    add_decoded(weight, weight.shape, fp8_generator(input, weight, *scale, options));
    out.consumed.push_back(scale_name +
                           ": FP8 block scale, consumed by the fp8 block "
                           "dequantization rule of " +
                           weight.name);
  }

  void fp8_scale(const CatalogTensor& scale) {
    const std::string weight_name = quant_strip_suffix(scale.name, kScaleSuffix);
    const CatalogTensor* weight = find(weight_name);
    if (weight == nullptr)
      problems.push_back(quant_describe(scale) + " is a block scale without its weight " +
                         weight_name);
    else if (weight->dtype != DType::kF8_E4M3)
      problems.push_back(quant_describe(scale) + " is a block scale of " + quant_describe(*weight) +
                         ", which is not F8_E4M3");
  }

  void mxfp4_blocks(const CatalogTensor& blocks) {
    const std::string scales_name = quant_strip_suffix(blocks.name, kBlocksSuffix) + kScalesSuffix;
    const CatalogTensor* scales = find(scales_name);
    if (scales == nullptr) {
      problems.push_back(quant_describe(blocks) + " has no MXFP4 scales " + scales_name);
      return;
    }
    const Shape& shape = blocks.shape;
    const bool shaped = shape.size() >= 2 && shape.back() == 16 && scales->dtype == DType::kU8 &&
                        scales->shape == Shape(shape.begin(), shape.end() - 1);
    if (!shaped) {
      problems.push_back(quant_describe(*scales) + ": the MXFP4 scales of " +
                         quant_describe(blocks) +
                         " must be U8 [..., G] for blocks U8 [..., G, 16]");
      return;
    }
    Shape decoded(shape.begin(), shape.end() - 1);
    decoded.back() *= 32;
    add_decoded(blocks, decoded, mxfp4_generator(input, blocks, *scales));
    out.consumed.push_back(scales_name +
                           ": MXFP4 scales, consumed by the mxfp4 dequantization "
                           "rule of " +
                           blocks.name);
  }

  void mxfp4_scales(const CatalogTensor& scales) {
    const std::string blocks_name = quant_strip_suffix(scales.name, kScalesSuffix) + kBlocksSuffix;
    const CatalogTensor* blocks = find(blocks_name);
    if (blocks == nullptr || blocks->dtype != DType::kU8)
      problems.push_back(quant_describe(scales) + " are MXFP4 scales without their U8 blocks " +
                         blocks_name);
  }
};

}  // namespace

DecodedInput decode_quantized_input(const MappedCheckpoint& input,
                                    const QuantizationOptions& options) {
  const Catalog& catalog = input.catalog();
  DecodedInput out;
  out.catalog = catalog;
  out.catalog.tensors.clear();
  Decoder decoder{input, options, {}, out, {}};
  for (const CatalogTensor& tensor : catalog.tensors) decoder.by_name[tensor.name] = &tensor;
  for (const CatalogTensor& tensor : catalog.tensors) {
    if (tensor.dtype == DType::kF8_E4M3)
      decoder.fp8_weight(tensor);
    else if (quant_has_suffix(tensor.name, kScaleSuffix))
      decoder.fp8_scale(tensor);
    else if (tensor.dtype == DType::kU8 && quant_has_suffix(tensor.name, kBlocksSuffix))
      decoder.mxfp4_blocks(tensor);
    else if (tensor.dtype == DType::kU8 && quant_has_suffix(tensor.name, kScalesSuffix))
      decoder.mxfp4_scales(tensor);
    else
      out.catalog.tensors.push_back(tensor);
  }
  if (!decoder.problems.empty()) {
    std::string message = "input " + catalog.path.string() + ": incomplete quantized tensors (" +
                          std::to_string(decoder.problems.size()) + "):";
    for (size_t i = 0; i < decoder.problems.size() && i < 20; ++i)
      message += "\n    " + decoder.problems[i];
    if (decoder.problems.size() > 20)
      message += "\n    ... and " + std::to_string(decoder.problems.size() - 20) + " more";
    fail_input(message);
  }
  return out;
}

}  // namespace ckconv
