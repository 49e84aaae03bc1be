// The strided copy kernel: runs, transposes, every element size, unaligned addresses; the
// tiling of a row-major element range; and copies through an element reader.
#include "pipeline/strided_copy.h"

#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

using namespace ckconv;

namespace {
std::string kernel_names(const std::vector<LineKernel>& kernels) {
  std::string names;
  for (LineKernel kernel : kernels) names += kernel == LineKernel::kSse2 ? " SSE2" : " AVX-512";
  return names;
}
}  // namespace

TEST_CASE("copy_strided handles runs, transposes and every element size") {
  for (int size : {1, 2, 4, 8, 16}) {
    const int64_t rows = 37, cols = 70;  // not multiples of the 32-element block
    std::vector<uint8_t> source(static_cast<size_t>(rows * cols * size));
    for (size_t i = 0; i < source.size(); ++i) source[i] = static_cast<uint8_t>(i * 7 + 3);
    std::vector<uint8_t> target(source.size());
    copy_strided(target.data(), {rows, 1}, source.data(), {1, cols}, {cols, rows},
                 size);  // transpose
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c)
        CHECK(std::memcmp(&target[(c * rows + r) * size], &source[(r * cols + c) * size], size) ==
              0);
    std::vector<uint8_t> copy(source.size());
    copy_strided(copy.data(), {cols, 1}, source.data(), {cols, 1}, {rows, cols}, size);
    CHECK(copy == source);
  }
}

TEST_CASE("copy_strided reads and writes elements at unaligned addresses") {
  // Tensors in a safetensors or torch.save file may start at any byte offset; the strided
  // copy must not dereference misaligned typed pointers (UBSan checks this in the sanitizer
  // build).
  for (int size : {2, 4, 8, 16}) {
    const int64_t rows = 5, cols = 9;
    std::vector<uint8_t> source(static_cast<size_t>(rows * cols * size) + 1);
    for (size_t i = 0; i < source.size(); ++i) source[i] = static_cast<uint8_t>(i * 13 + 1);
    std::vector<uint8_t> target(source.size());
    copy_strided(target.data() + 1, {rows, 1}, source.data() + 1, {1, cols}, {cols, rows}, size);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c)
        CHECK(std::memcmp(&target[1 + (c * rows + r) * size], &source[1 + (r * cols + c) * size],
                          size) == 0);
    std::vector<uint8_t> strided(source.size());
    copy_strided(strided.data() + 1, {1}, source.data() + 1, {2}, {(rows * cols + 1) / 2}, size);
    for (int64_t i = 0; i < (rows * cols + 1) / 2; ++i)
      CHECK(std::memcmp(&strided[1 + i * size], &source[1 + 2 * i * size], size) == 0);
  }
}

TEST_CASE("copy_strided transposes batched, padded, unaligned boxes like the scalar rule") {
  // The vector tile kernels (8 x 8 of 2-byte, 4 x 4 of 4-byte elements) and the scalar edges
  // must together write exactly the elements the definition names, and nothing outside them.
  for (LineKernel kernel : supported_line_kernels())
    for (int size : {2, 4}) {
      const int64_t batch = 3, rows = 19, cols = 45;  // target [batch, cols, rows] of a source
      const int64_t source_row = rows + 5, target_row = rows + 3;  // [batch, rows, cols] padded
      const int64_t source_batch = cols * source_row + 7, target_batch = cols * target_row + 2;
      std::vector<uint8_t> source(static_cast<size_t>(batch * source_batch * size) + 1);
      for (size_t i = 0; i < source.size(); ++i) source[i] = static_cast<uint8_t>(i * 29 + 5);
      std::vector<uint8_t> target(static_cast<size_t>(batch * target_batch * size) + 1, 0xAB);
      std::vector<uint8_t> expected = target;
      for (int64_t b = 0; b < batch; ++b)
        for (int64_t c = 0; c < cols; ++c)
          for (int64_t r = 0; r < rows; ++r)
            std::memcpy(&expected[1 + (b * target_batch + c * target_row + r) * size],
                        &source[1 + (b * source_batch + c * source_row + r) * size], size);
      // Target [batch, rows, cols] view: element (b, r, c) at b*tb + c*target_row + r; the
      // source element (b, r, c) at b*sb + c*source_row + r: rows contiguous in both is not a
      // transpose, so swap: the target's contiguous dim is c.
      std::vector<uint8_t> transposed(target.size(), 0xAB);
      std::vector<uint8_t> transposed_expected = transposed;
      for (int64_t b = 0; b < batch; ++b)
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t c = 0; c < cols; ++c)
            std::memcpy(&transposed_expected[1 + (b * target_batch + r * (cols + 3) + c) * size],
                        &source[1 + (b * source_batch + c * source_row + r) * size], size);
      copy_strided(transposed.data() + 1, {target_batch, cols + 3, 1}, source.data() + 1,
                   {source_batch, 1, source_row}, {batch, rows, cols}, size, kernel);
      CHECK(transposed == transposed_expected);
      copy_strided(target.data() + 1, {target_batch, target_row, 1}, source.data() + 1,
                   {source_batch, source_row, 1}, {batch, cols, rows}, size);
      CHECK(target == expected);
    }
}

TEST_CASE("copy_strided transposes large boxes in whole lines like the scalar rule") {
  // A true transpose goes through 64-byte lines on both sides with the edges in tiles; a
  // box of 256 KiB or more whose target rows are 64-byte aligned stores its lines
  // non-temporally from the first line boundary of each target row on. Target row strides
  // of 1120 elements are line-aligned for both sizes, 1104 is not for 2-byte elements; the
  // batch stride is 3 elements past a line, so each batch starts at another offset; the
  // target is shifted by 0 or 1 element, or by 1 byte (no stream at all). Every case must
  // write exactly the scalar rule's bytes and nothing else, with every line kernel this CPU
  // has (a CPU without AVX-512 cannot check it: the message says which ran).
  const std::vector<LineKernel> kernels = supported_line_kernels();
  MESSAGE("line kernels checked:" << kernel_names(kernels));
  for (LineKernel kernel : kernels)
    for (int size : {2, 4}) {
      const int64_t batch = 3, rows = 301, cols = 1099;  // target [batch, rows, cols]
      const int64_t source_row = rows + 5;
      const int64_t source_batch = cols * source_row + 1;
      std::vector<uint8_t> source(static_cast<size_t>(batch * source_batch * size));
      for (size_t i = 0; i < source.size(); ++i) source[i] = static_cast<uint8_t>(i * 31 + i / 509);
      for (int64_t target_row : {1104, 1120}) {
        const int64_t target_batch = rows * target_row + 3;
        for (int64_t shift_bytes : {0, size, 1}) {
          std::vector<uint8_t> target(
              static_cast<size_t>(batch * target_batch * size + shift_bytes), 0xAB);
          std::vector<uint8_t> expected = target;
          for (int64_t b = 0; b < batch; ++b)
            for (int64_t r = 0; r < rows; ++r)
              for (int64_t c = 0; c < cols; ++c)
                std::memcpy(&expected[shift_bytes + (b * target_batch + r * target_row + c) * size],
                            &source[(b * source_batch + c * source_row + r) * size], size);
          copy_strided(target.data() + shift_bytes, {target_batch, target_row, 1}, source.data(),
                       {source_batch, 1, source_row}, {batch, rows, cols}, size, kernel);
          CHECK(target == expected);
        }
      }
    }
}

TEST_CASE("split_into_tiles covers a range with whole-index tiles, in order") {
  const Shape view = {3, 4, 5};  // 60 elements
  const Shape strides = contiguous_strides(view);
  for (int64_t first = 0; first < 60; ++first)
    for (int64_t count = 0; first + count <= 60; ++count) {
      int64_t next = first;  // the tiles must be contiguous and in order
      size_t tiles = 0;
      split_into_tiles(view, 0, 0, first, count, [&](const Tile& tile) {
        int64_t begin = tile.begin * strides[tile.dim];
        int64_t outer = tile.outer;
        for (size_t d = tile.dim; d-- > 0;) {
          begin += (outer % view[d]) * strides[d];
          outer /= view[d];
        }
        CHECK(begin == next);
        CHECK(tile.end > tile.begin);
        next = begin + (tile.end - tile.begin) * strides[tile.dim];
        ++tiles;
      });
      CHECK(next == first + count);
      CHECK(tiles <= 2 * view.size());
    }
  size_t tiles = 0;
  split_into_tiles(view, 0, 0, 0, 60, [&](const Tile& tile) {
    CHECK(tile.dim == 0);
    CHECK(tile.begin == 0);
    CHECK(tile.end == 3);
    ++tiles;
  });
  CHECK(tiles == 1);
}

TEST_CASE("copy_strided_runs matches copy_strided, one read per contiguous run") {
  const int64_t rows = 6, cols = 7;
  std::vector<uint8_t> source(static_cast<size_t>(rows * cols * 2));
  for (size_t i = 0; i < source.size(); ++i) source[i] = static_cast<uint8_t>(i * 5 + 1);
  int reads = 0;
  const ElementReader read = [&](int64_t first, int64_t count, uint8_t* out) {
    ++reads;
    std::memcpy(out, source.data() + first * 2, static_cast<size_t>(count * 2));
  };
  // Rows 1..4, columns 2..6 of the source, transposed.
  std::vector<uint8_t> expected(static_cast<size_t>(4 * 5 * 2)), actual(expected.size());
  copy_strided(expected.data(), {1, 4}, source.data() + (1 * cols + 2) * 2, {cols, 1}, {4, 5}, 2);
  copy_strided_runs(actual.data(), {1, 4}, read, 1 * cols + 2, {cols, 1}, {4, 5}, 2);
  CHECK(actual == expected);
  CHECK(reads == 4 * 5);  // the target is strided: element by element
  reads = 0;
  copy_strided(expected.data(), {5, 1}, source.data() + (1 * cols + 2) * 2, {cols, 1}, {4, 5}, 2);
  copy_strided_runs(actual.data(), {5, 1}, read, 1 * cols + 2, {cols, 1}, {4, 5}, 2);
  CHECK(actual == expected);
  CHECK(reads == 4);  // one run per row
}
