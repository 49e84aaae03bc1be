#include "layout/recipe.h"

#include <algorithm>
#include <utility>

#include "core/error.h"

namespace ckconv {
namespace {

int64_t product(const Shape& shape, size_t from, size_t to) {
  int64_t count = 1;
  for (size_t d = from; d < to; ++d) count *= shape[d];
  return count;
}

// Elements after the first dim ("columns" of a weight; 1 for a bias).
int64_t trailing_elements(const Shape& shape) {
  return product(shape, 1, shape.size());
}

Piece whole_box(const Shape& view, int source, int64_t offset, Shape strides) {
  Piece piece;
  piece.offsets.assign(view.size(), 0);
  piece.sizes = view;
  piece.source = source;
  piece.source_offset = offset;
  piece.source_strides = std::move(strides);
  return piece;
}

TensorRecipe make(const std::string& out, const Shape& shape, DType dtype, Shape view,
                  std::vector<std::string> sources) {
  TensorRecipe recipe;
  recipe.name = out;
  recipe.dtype = dtype;
  recipe.shape = shape;
  recipe.view_shape = std::move(view);
  recipe.sources = std::move(sources);
  return recipe;
}

void require_heads(const Shape& shape, int64_t rows, int64_t head_dim, const std::string& name) {
  if (shape.empty() || shape[0] != rows || head_dim % 2 != 0)
    fail(ErrorKind::kInternal, "RoPE layout of '" + name + "': shape " + shape_to_string(shape) +
                                   " does not split into heads of " + std::to_string(head_dim));
}

}  // namespace

void validate_recipe(const TensorRecipe& recipe, const std::vector<Shape>& source_shapes) {
  const std::string what = "recipe for '" + recipe.name + "'";
  auto bug = [&](const std::string& message) { fail(ErrorKind::kInternal, what + ": " + message); };
  if (num_elements(recipe.view_shape) != num_elements(recipe.shape))
    bug("view " + shape_to_string(recipe.view_shape) + " is not a reshape of " +
        shape_to_string(recipe.shape));
  if (source_shapes.size() != recipe.sources.size()) bug("source shapes missing");
  const size_t rank = recipe.view_shape.size();
  int64_t covered = 0;
  for (const Piece& piece : recipe.pieces) {
    if (piece.offsets.size() != rank || piece.sizes.size() != rank) bug("piece rank");
    for (size_t d = 0; d < rank; ++d)
      if (piece.offsets[d] < 0 || piece.sizes[d] < 0 ||
          piece.offsets[d] + piece.sizes[d] > recipe.view_shape[d])
        bug("piece outside the view");
    const int64_t count = num_elements(piece.sizes);
    covered += count;
    if (piece.source == Piece::kZeros || count == 0) continue;
    if (piece.source < 0 || static_cast<size_t>(piece.source) >= recipe.sources.size())
      bug("piece names no source");
    if (piece.source_strides.size() != rank) bug("source stride rank");
    int64_t reach = piece.source_offset;
    for (size_t d = 0; d < rank; ++d) {
      if (piece.source_strides[d] < 0) bug("negative source stride");
      reach += (piece.sizes[d] - 1) * piece.source_strides[d];
    }
    if (piece.source_offset < 0 || reach >= num_elements(source_shapes[piece.source]))
      bug("piece reads outside source '" + recipe.sources[piece.source] + "'");
  }
  if (covered != num_elements(recipe.view_shape)) bug("pieces do not cover the tensor exactly");
  for (size_t a = 0; a < recipe.pieces.size(); ++a)
    for (size_t b = a + 1; b < recipe.pieces.size(); ++b) {
      const Piece& p = recipe.pieces[a];
      const Piece& q = recipe.pieces[b];
      bool overlap = num_elements(p.sizes) > 0 && num_elements(q.sizes) > 0;
      for (size_t d = 0; d < rank && overlap; ++d)
        overlap = std::max(p.offsets[d], q.offsets[d]) <
                  std::min(p.offsets[d] + p.sizes[d], q.offsets[d] + q.sizes[d]);
      if (overlap) bug("pieces overlap");
    }
}

TensorRecipe recipe_identity(const std::string& out, const std::string& src, const Shape& shape,
                             DType dtype) {
  Shape view = {num_elements(shape)};
  TensorRecipe recipe = make(out, shape, dtype, view, {src});
  recipe.pieces.push_back(whole_box(view, 0, 0, {1}));
  return recipe;
}

TensorRecipe recipe_zeros(const std::string& out, const Shape& shape, DType dtype) {
  Shape view = {num_elements(shape)};
  TensorRecipe recipe = make(out, shape, dtype, view, {});
  recipe.pieces.push_back(whole_box(view, Piece::kZeros, 0, {}));
  return recipe;
}

TensorRecipe recipe_rope_permute(const std::string& out, const std::string& src, int64_t n_heads,
                                 int64_t head_dim, const Shape& shape, DType dtype, bool inverse) {
  require_heads(shape, n_heads * head_dim, head_dim, out);
  const int64_t cols = trailing_elements(shape);
  const int64_t half = head_dim / 2;
  TensorRecipe recipe;
  if (!inverse) {
    // out[h, j, i, c] = src[h*hd + 2i + j, c]
    recipe = make(out, shape, dtype, {n_heads, 2, half, cols}, {src});
    recipe.pieces.push_back(
        whole_box(recipe.view_shape, 0, 0, {head_dim * cols, cols, 2 * cols, 1}));
  } else {
    // out[h, i, j, c] = src[h*hd + j*half + i, c]
    recipe = make(out, shape, dtype, {n_heads, half, 2, cols}, {src});
    recipe.pieces.push_back(
        whole_box(recipe.view_shape, 0, 0, {head_dim * cols, cols, half * cols, 1}));
  }
  return recipe;
}

TensorRecipe recipe_fused_qkv_part(const std::string& out, const std::string& fused, int part,
                                   int64_t n_heads, int64_t n_kv_heads, int64_t head_dim,
                                   const Shape& fused_shape, DType dtype, bool permute) {
  const int64_t per_group = n_heads / n_kv_heads;  // query heads per KV head
  const int64_t slots = per_group + 2;
  require_heads(fused_shape, n_kv_heads * slots * head_dim, head_dim, out);
  const int64_t cols = trailing_elements(fused_shape);
  const int64_t group_stride = slots * head_dim * cols;
  const int64_t half = head_dim / 2;
  Shape out_shape = fused_shape;
  out_shape[0] = (part == 0 ? n_heads : n_kv_heads) * head_dim;
  Shape view;
  Shape strides;
  int64_t offset = 0;
  if (part == 0) {
    if (permute) {
      view = {n_kv_heads, per_group, 2, half, cols};
      strides = {group_stride, head_dim * cols, cols, 2 * cols, 1};
    } else {
      view = {n_kv_heads, per_group, head_dim, cols};
      strides = {group_stride, head_dim * cols, cols, 1};
    }
  } else {
    offset = (part == 1 ? per_group : per_group + 1) * head_dim * cols;
    if (part == 1 && permute) {
      view = {n_kv_heads, 2, half, cols};
      strides = {group_stride, cols, 2 * cols, 1};
    } else {
      view = {n_kv_heads, head_dim, cols};
      strides = {group_stride, cols, 1};
    }
  }
  TensorRecipe recipe = make(out, out_shape, dtype, view, {fused});
  recipe.pieces.push_back(whole_box(recipe.view_shape, 0, offset, strides));
  return recipe;
}

TensorRecipe recipe_fused_qkv_pack(const std::string& out, const std::string& q,
                                   const std::string& k, const std::string& v, int64_t n_heads,
                                   int64_t n_kv_heads, int64_t head_dim, const Shape& fused_shape,
                                   DType dtype, bool permute) {
  const int64_t per_group = n_heads / n_kv_heads;
  const int64_t slots = per_group + 2;
  require_heads(fused_shape, n_kv_heads * slots * head_dim, head_dim, out);
  const int64_t cols = trailing_elements(fused_shape);
  const int64_t half = head_dim / 2;
  const int64_t head = head_dim * cols;
  TensorRecipe recipe;
  // Each piece is one slot range of every KV group; within a head, the native row r = 2i + j
  // is HF row j*half + i when permuting (q and k only; v is never permuted).
  auto add = [&](int source, int64_t slot, int64_t count, int64_t group_stride, int64_t slot_stride,
                 bool rotate) {
    Piece piece;
    piece.source = source;
    if (permute) {
      piece.offsets = {0, slot, 0, 0, 0};
      piece.sizes = {n_kv_heads, count, half, 2, cols};
      piece.source_strides = rotate ? Shape{group_stride, slot_stride, cols, half * cols, 1}
                                    : Shape{group_stride, slot_stride, 2 * cols, cols, 1};
    } else {
      piece.offsets = {0, slot, 0, 0};
      piece.sizes = {n_kv_heads, count, head_dim, cols};
      piece.source_strides = {group_stride, slot_stride, cols, 1};
    }
    recipe.pieces.push_back(piece);
  };
  Shape view =
      permute ? Shape{n_kv_heads, slots, half, 2, cols} : Shape{n_kv_heads, slots, head_dim, cols};
  recipe = make(out, fused_shape, dtype, view, {q, k, v});
  add(0, 0, per_group, per_group * head, head, true);
  add(1, per_group, 1, head, 0, true);
  add(2, per_group + 1, 1, head, 0, false);
  return recipe;
}

TensorRecipe recipe_unstack(const std::string& out, const std::string& stacked, int64_t index,
                            const Shape& stacked_shape, DType dtype) {
  Shape rest(stacked_shape.begin() + 1, stacked_shape.end());
  const int64_t count = num_elements(rest);
  Shape view = {count};
  TensorRecipe recipe = make(out, rest, dtype, view, {stacked});
  recipe.pieces.push_back(whole_box(view, 0, index * count, {1}));
  return recipe;
}

TensorRecipe recipe_stack(const std::string& out, const std::vector<std::string>& parts,
                          const Shape& stacked_shape, DType dtype) {
  const int64_t count = trailing_elements(stacked_shape);
  Shape view = {stacked_shape[0], count};
  TensorRecipe recipe = make(out, stacked_shape, dtype, view, parts);
  for (size_t e = 0; e < parts.size(); ++e) {
    Piece piece;
    piece.offsets = {static_cast<int64_t>(e), 0};
    piece.sizes = {1, count};
    piece.source = static_cast<int>(e);
    piece.source_strides = {0, 1};
    recipe.pieces.push_back(piece);
  }
  return recipe;
}

TensorRecipe recipe_transpose_last2(const std::string& out, const std::string& src,
                                    const Shape& src_shape, DType dtype) {
  const size_t rank = src_shape.size();
  CKCONV_CHECK(rank >= 2);
  const int64_t a = src_shape[rank - 2];
  const int64_t b = src_shape[rank - 1];
  const int64_t batch = product(src_shape, 0, rank - 2);
  Shape out_shape = src_shape;
  std::swap(out_shape[rank - 2], out_shape[rank - 1]);
  TensorRecipe recipe = make(out, out_shape, dtype, {batch, b, a}, {src});
  recipe.pieces.push_back(whole_box(recipe.view_shape, 0, 0, {a * b, 1, b}));
  return recipe;
}

namespace {

// The concatenation of `parts` along the last dim of a [batch, rows, total] view, whose
// shape is part_shapes[0]'s with its last two dims (rows, total). Part k is `width` wide:
// transposed, its own [.., width, rows] read column-wise (cat(part^T, dim=-1)); otherwise
// its own [.., rows, width] read row-wise (cat(part, dim=-1)).
TensorRecipe concat_last_dim(const std::string& out, const std::vector<std::string>& parts,
                             const std::vector<Shape>& part_shapes, DType dtype, bool transposed) {
  CKCONV_CHECK(!parts.empty() && parts.size() == part_shapes.size());
  const size_t rank = part_shapes[0].size();
  CKCONV_CHECK(rank >= 2);
  const size_t width_dim = transposed ? rank - 2 : rank - 1;
  const int64_t rows = part_shapes[0][transposed ? rank - 1 : rank - 2];
  const int64_t batch = product(part_shapes[0], 0, rank - 2);
  int64_t total = 0;
  for (const Shape& shape : part_shapes) total += shape[width_dim];
  Shape out_shape = part_shapes[0];
  out_shape[rank - 2] = rows;
  out_shape[rank - 1] = total;
  TensorRecipe recipe = make(out, out_shape, dtype, {batch, rows, total}, parts);
  int64_t column = 0;
  for (size_t k = 0; k < parts.size(); ++k) {
    const int64_t width = part_shapes[k][width_dim];
    Piece piece;
    piece.offsets = {0, 0, column};
    piece.sizes = {batch, rows, width};
    piece.source = static_cast<int>(k);
    piece.source_strides =
        transposed ? Shape{width * rows, 1, rows} : Shape{rows * width, width, 1};
    recipe.pieces.push_back(piece);
    column += width;
  }
  return recipe;
}

}  // namespace

TensorRecipe recipe_concat_transposed(const std::string& out, const std::vector<std::string>& parts,
                                      const std::vector<Shape>& part_shapes, DType dtype) {
  return concat_last_dim(out, parts, part_shapes, dtype, true);
}

namespace {

// Where part `index` starts along dim `dim` of the concatenation of `part_shapes`, and that
// dim's total extent.
std::pair<int64_t, int64_t> part_start_and_total(const std::vector<Shape>& part_shapes, int index,
                                                 size_t dim) {
  int64_t start = 0;
  int64_t total = 0;
  for (size_t k = 0; k < part_shapes.size(); ++k) {
    if (static_cast<int>(k) == index) start = total;
    total += part_shapes[k][dim];
  }
  return {start, total};
}

}  // namespace

TensorRecipe recipe_split_transposed(const std::string& out, const std::string& src, int index,
                                     const std::vector<Shape>& part_shapes, DType dtype) {
  const size_t rank = part_shapes[0].size();
  const int64_t b = part_shapes[0][rank - 1];
  const int64_t batch = product(part_shapes[0], 0, rank - 2);
  const auto [column, total] = part_start_and_total(part_shapes, index, rank - 2);
  const Shape& shape = part_shapes[index];
  const int64_t a = shape[rank - 2];
  TensorRecipe recipe = make(out, shape, dtype, {batch, a, b}, {src});
  recipe.pieces.push_back(whole_box(recipe.view_shape, 0, column, {b * total, 1, total}));
  return recipe;
}

namespace {

// [batch, F, D] of a [batch..., F, 2, D] pair shape.
Shape pair_dims(const Shape& pair_shape) {
  const size_t rank = pair_shape.size();
  CKCONV_CHECK(rank >= 3 && pair_shape[rank - 2] == 2);
  return {product(pair_shape, 0, rank - 3), pair_shape[rank - 3], pair_shape[rank - 1]};
}

}  // namespace

TensorRecipe recipe_pair_part(const std::string& out, const std::string& pair, int part,
                              int64_t index, const Shape& pair_shape, DType dtype) {
  const Shape dims = pair_dims(pair_shape);
  const int64_t rows = dims[1];
  const int64_t cols = dims[2];
  TensorRecipe recipe = make(out, {rows, cols}, dtype, {rows, cols}, {pair});
  recipe.pieces.push_back(
      whole_box(recipe.view_shape, 0, index * rows * 2 * cols + part * cols, {2 * cols, 1}));
  return recipe;
}

TensorRecipe recipe_pair_pack(const std::string& out, const std::vector<std::string>& parts,
                              const Shape& pair_shape, DType dtype) {
  const Shape dims = pair_dims(pair_shape);
  const int64_t batch = dims[0];
  CKCONV_CHECK(static_cast<int64_t>(parts.size()) == 2 * batch);
  TensorRecipe recipe = make(out, pair_shape, dtype, {batch, dims[1], 2, dims[2]}, parts);
  for (int64_t part = 0; part < 2; ++part)
    for (int64_t index = 0; index < batch; ++index) {
      Piece piece;
      piece.offsets = {index, 0, part, 0};
      piece.sizes = {1, dims[1], 1, dims[2]};
      piece.source = static_cast<int>(part * batch + index);
      piece.source_strides = {0, dims[2], 0, 1};
      recipe.pieces.push_back(piece);
    }
  return recipe;
}

TensorRecipe recipe_concat_rows(const std::string& out, const std::vector<std::string>& parts,
                                const std::vector<Shape>& part_shapes, DType dtype) {
  CKCONV_CHECK(!parts.empty() && parts.size() == part_shapes.size());
  const size_t rank = part_shapes[0].size();
  CKCONV_CHECK(rank >= 2);
  const int64_t b = part_shapes[0][rank - 1];
  const int64_t batch = product(part_shapes[0], 0, rank - 2);
  int64_t total = 0;
  for (const Shape& shape : part_shapes) total += shape[rank - 2];
  Shape out_shape = part_shapes[0];
  out_shape[rank - 2] = total;
  TensorRecipe recipe = make(out, out_shape, dtype, {batch, total, b}, parts);
  int64_t row = 0;
  for (size_t k = 0; k < parts.size(); ++k) {
    const int64_t a = part_shapes[k][rank - 2];
    Piece piece;
    piece.offsets = {0, row, 0};
    piece.sizes = {batch, a, b};
    piece.source = static_cast<int>(k);
    piece.source_strides = {a * b, b, 1};
    recipe.pieces.push_back(piece);
    row += a;
  }
  return recipe;
}

TensorRecipe recipe_split_rows(const std::string& out, const std::string& src, int index,
                               const std::vector<Shape>& part_shapes, DType dtype) {
  const size_t rank = part_shapes[0].size();
  const int64_t b = part_shapes[0][rank - 1];
  const int64_t batch = product(part_shapes[0], 0, rank - 2);
  const auto [row, total] = part_start_and_total(part_shapes, index, rank - 2);
  const Shape& shape = part_shapes[index];
  const int64_t a = shape[rank - 2];
  TensorRecipe recipe = make(out, shape, dtype, {batch, a, b}, {src});
  recipe.pieces.push_back(whole_box(recipe.view_shape, 0, row * b, {total * b, b, 1}));
  return recipe;
}

TensorRecipe recipe_concat_columns(const std::string& out, const std::vector<std::string>& parts,
                                   const std::vector<Shape>& part_shapes, DType dtype) {
  return concat_last_dim(out, parts, part_shapes, dtype, false);
}

TensorRecipe recipe_split_columns(const std::string& out, const std::string& src, int index,
                                  const std::vector<Shape>& part_shapes, DType dtype) {
  const size_t rank = part_shapes[0].size();
  const int64_t rows = part_shapes[0][rank - 2];
  const int64_t batch = product(part_shapes[0], 0, rank - 2);
  const auto [column, total] = part_start_and_total(part_shapes, index, rank - 1);
  const Shape& shape = part_shapes[index];
  TensorRecipe recipe = make(out, shape, dtype, {batch, rows, shape[rank - 1]}, {src});
  recipe.pieces.push_back(whole_box(recipe.view_shape, 0, column, {rows * total, total, 1}));
  return recipe;
}

}  // namespace ckconv
