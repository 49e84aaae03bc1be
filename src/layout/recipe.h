// The layout algebra: every output tensor is a set of boxes ("pieces") of a reshaped view of
// that tensor, each box filled from a strided view of one source tensor, or with zeros. All
// adapter transforms (rename, RoPE row permutation, fused-QKV split/pack, expert
// stack/unstack, transposes, concatenation) are pure descriptions of this form, so one
// executor runs them all and inverses are just other descriptions. No I/O here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/shape.h"

namespace ckconv {

// A box of the output view, filled from source `source` (index into TensorRecipe::sources,
// or kZeros). The element at box index i (0 <= i[d] < sizes[d]) comes from the source
// element with row-major flat index `source_offset + sum(i[d] * source_strides[d])`.
struct Piece {
  static constexpr int kZeros = -1;
  Shape offsets;  // position of the box in the view
  Shape sizes;
  int source = kZeros;
  int64_t source_offset = 0;
  Shape source_strides;
};

struct TensorRecipe {
  std::string name;
  DType dtype = DType::kF32;  // of the output tensor
  // When set, the sources hold this dtype: the pieces move its elements, which are then
  // converted to `dtype` (core/float_convert.h, PyTorch's rounding). A cast commutes with
  // every layout operation, so where it happens does not change the values.
  std::optional<DType> cast_from;
  Shape shape;       // the output tensor, stored row-major
  Shape view_shape;  // a reshape of `shape` (same element count) in which pieces are boxes
  std::vector<std::string> sources;  // source tensor names
  std::vector<Piece> pieces;         // disjoint boxes covering the view exactly
};

// The dtype of the elements the pieces move: cast_from when set, else dtype.
inline DType piece_dtype(const TensorRecipe& recipe) {
  return recipe.cast_from.value_or(recipe.dtype);
}

// Checks that pieces are disjoint boxes inside the view covering it exactly, that every
// source index a piece can reach lies inside its source (`source_shapes` parallel to
// `sources`), and that view_shape reshapes shape. A failure is a ckconv bug (kInternal).
void validate_recipe(const TensorRecipe& recipe, const std::vector<Shape>& source_shapes);

// --- Constructors for the operations of the algebra (docs/mappings.md "How a mapping is
// expressed") ---

// out = src.
TensorRecipe recipe_identity(const std::string& out, const std::string& src, const Shape& shape,
                             DType dtype);
// out = zeros(shape).
TensorRecipe recipe_zeros(const std::string& out, const Shape& shape, DType dtype);

// RoPE row permutation of a [n*hd, cols] weight (or [n*hd] bias: cols = 1), per head of hd
// rows. to_hf (interleaved -> rotate-half): HF row h*hd + j*hd/2 + i = native row h*hd + 2i + j.
// `inverse` gives the from_hf direction.
TensorRecipe recipe_rope_permute(const std::string& out, const std::string& src, int64_t n_heads,
                                 int64_t head_dim, const Shape& shape, DType dtype, bool inverse);

// Fused QKV [nkv*(hpk+2)*hd, cols...] -> one of q ([nh*hd, ...]), k, v ([nkv*hd, ...]); part 0,
// 1, 2. With `permute`, q and k rows are also RoPE-permuted (llama3).
TensorRecipe recipe_fused_qkv_part(const std::string& out, const std::string& fused, int part,
                                   int64_t n_heads, int64_t n_kv_heads, int64_t head_dim,
                                   const Shape& fused_shape, DType dtype, bool permute);
// q, k, v -> fused; with `permute`, q and k are reverse-permuted on the way (from HF order).
TensorRecipe recipe_fused_qkv_pack(const std::string& out, const std::string& q,
                                   const std::string& k, const std::string& v, int64_t n_heads,
                                   int64_t n_kv_heads, int64_t head_dim, const Shape& fused_shape,
                                   DType dtype, bool permute);

// stacked [E, rest...] -> slice e as [rest...].
TensorRecipe recipe_unstack(const std::string& out, const std::string& stacked, int64_t index,
                            const Shape& stacked_shape, DType dtype);
// E tensors [rest...] -> stacked [E, rest...], in the order given.
TensorRecipe recipe_stack(const std::string& out, const std::vector<std::string>& parts,
                          const Shape& stacked_shape, DType dtype);

// [..., a, b] -> [..., b, a] (materialised, row-major).
TensorRecipe recipe_transpose_last2(const std::string& out, const std::string& src,
                                    const Shape& src_shape, DType dtype);

// Concatenation along the last dim of the last-two-dims transposes of `parts` (each
// [..., a_k, b]) -> [..., b, sum a_k]. llama4 gate_up_proj = cat(w1^T, w3^T).
TensorRecipe recipe_concat_transposed(const std::string& out, const std::vector<std::string>& parts,
                                      const std::vector<Shape>& part_shapes, DType dtype);
// Inverse: part `index` of a [..., b, sum a_k] tensor, transposed back to [..., a_index, b].
TensorRecipe recipe_split_transposed(const std::string& out, const std::string& src, int index,
                                     const std::vector<Shape>& part_shapes, DType dtype);

// Concatenation of `parts` (each [..., b, a_k]) along the last dim -> [..., b, sum a_k].
// torchtitan v0.1.0's llama4 experts, stored x @ W ([E, D, F]): gate_up_proj = cat(w1, w3).
TensorRecipe recipe_concat_columns(const std::string& out, const std::vector<std::string>& parts,
                                   const std::vector<Shape>& part_shapes, DType dtype);
// Inverse: part `index` [..., b, a_index] of a [..., b, sum a_k] tensor.
TensorRecipe recipe_split_columns(const std::string& out, const std::string& src, int index,
                                  const std::vector<Shape>& part_shapes, DType dtype);

// Interleaved pair [batch..., F, 2, D] (torchtitan's fused SwiGLU w13: w1 at [:, 0], w3 at
// [:, 1]; experts [E, F, 2, D]) -> part `part` (0 or 1) of batch element `index` as [F, D].
TensorRecipe recipe_pair_part(const std::string& out, const std::string& pair, int part,
                              int64_t index, const Shape& pair_shape, DType dtype);
// Inverse: `parts` = the batch elements' part 0 tensors, then their part 1 tensors (2 * batch
// tensors of [F, D]) -> the interleaved pair of `pair_shape`.
TensorRecipe recipe_pair_pack(const std::string& out, const std::vector<std::string>& parts,
                              const Shape& pair_shape, DType dtype);
// Concatenation of `parts` (each [..., a_k, b]) along the second-to-last dim ->
// [..., sum a_k, b]. transformers' fused MoE gate_up_proj [E, 2F, D] = cat(w1_EFD, w3_EFD, dim=1).
TensorRecipe recipe_concat_rows(const std::string& out, const std::vector<std::string>& parts,
                                const std::vector<Shape>& part_shapes, DType dtype);
// Inverse: part `index` [..., a_index, b] of a [..., sum a_k, b] tensor.
TensorRecipe recipe_split_rows(const std::string& out, const std::string& src, int index,
                               const std::vector<Shape>& part_shapes, DType dtype);

}  // namespace ckconv
