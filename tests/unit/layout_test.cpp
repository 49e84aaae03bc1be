// The layout algebra against the element formulas of docs/mappings.md ("Fused QKV layout", "The
// RoPE row permutation", "Expert layouts" for llama4 gate_up), and each operation against its
// inverse.
#include <doctest/doctest.h>

#include <cstring>
#include <functional>
#include <map>
#include <numeric>

#include "core/error.h"
#include "error_checks.h"
#include "layout/recipe.h"

using namespace ckconv;

namespace {

using Values = std::vector<int64_t>;

Values iota(int64_t count, int64_t start = 0) {
  Values values(static_cast<size_t>(count));
  std::iota(values.begin(), values.end(), start);
  return values;
}

// Reference evaluator: element by element, straight from the Piece definition.
Values evaluate(const TensorRecipe& recipe, const std::map<std::string, Values>& sources) {
  std::vector<Shape> shapes;
  for (const auto& name : recipe.sources)
    shapes.push_back({static_cast<int64_t>(sources.at(name).size())});
  Values out(static_cast<size_t>(num_elements(recipe.shape)), -1);
  const Shape strides = contiguous_strides(recipe.view_shape);
  for (const Piece& piece : recipe.pieces) {
    const size_t rank = piece.sizes.size();
    Shape index(rank, 0);
    for (int64_t n = 0; n < num_elements(piece.sizes); ++n) {
      int64_t rest = n, target = 0, source = piece.source_offset;
      for (size_t d = rank; d-- > 0;) {
        index[d] = rest % piece.sizes[d];
        rest /= piece.sizes[d];
      }
      for (size_t d = 0; d < rank; ++d) {
        target += (piece.offsets[d] + index[d]) * strides[d];
        if (piece.source != Piece::kZeros) source += index[d] * piece.source_strides[d];
      }
      out[target] =
          piece.source == Piece::kZeros ? 0 : sources.at(recipe.sources[piece.source])[source];
    }
  }
  return out;
}

}  // namespace

TEST_CASE("RoPE permutation follows the row formula and inverts exactly") {
  const int64_t heads = 3, head_dim = 8, cols = 5, half = head_dim / 2;
  const Shape shape = {heads * head_dim, cols};
  const Values native = iota(num_elements(shape));
  TensorRecipe to_hf =
      recipe_rope_permute("hf", "native", heads, head_dim, shape, DType::kF32, false);
  validate_recipe(to_hf, {shape});
  const Values hf = evaluate(to_hf, {{"native", native}});
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < half; ++i)
      for (int64_t j = 0; j < 2; ++j)
        for (int64_t c = 0; c < cols; ++c)
          CHECK(hf[((h * head_dim + j * half + i) * cols + c)] ==
                native[(h * head_dim + 2 * i + j) * cols + c]);
  TensorRecipe back =
      recipe_rope_permute("native", "hf", heads, head_dim, shape, DType::kF32, true);
  CHECK(evaluate(back, {{"hf", hf}}) == native);
  CHECK_THROWS_KIND_WITH(recipe_rope_permute("x", "y", 2, 3, {6, 4}, DType::kF32, false),
                         ErrorKind::kInternal, "heads of 3");  // odd head_dim
}

TEST_CASE("fused QKV split groups query heads per KV head, and packing inverts it") {
  const int64_t heads = 4, kv_heads = 2, head_dim = 4, cols = 3, per_group = heads / kv_heads;
  const Shape fused_shape = {(heads + 2 * kv_heads) * head_dim, cols};
  const Values fused = iota(num_elements(fused_shape));
  for (bool permute : {false, true}) {
    std::map<std::string, Values> parts;
    const char* names[] = {"q", "k", "v"};
    for (int part = 0; part < 3; ++part) {
      TensorRecipe recipe = recipe_fused_qkv_part(names[part], "fused", part, heads, kv_heads,
                                                  head_dim, fused_shape, DType::kF32, permute);
      validate_recipe(recipe, {fused_shape});
      parts[names[part]] = evaluate(recipe, {{"fused", fused}});
    }
    // Fused row r -> group g = r / (R*hd), slot j = (r / hd) % R, d = r % hd.
    const int64_t slots = per_group + 2;
    for (int64_t r = 0; r < fused_shape[0]; ++r) {
      const int64_t g = r / (slots * head_dim), j = (r / head_dim) % slots, d = r % head_dim;
      // Without permutation the split row is the fused row; with it, row d of a head moves to
      // (d % 2) * hd/2 + d / 2.
      const int64_t moved = permute ? (d % 2) * (head_dim / 2) + d / 2 : d;
      const char* name = j < per_group ? "q" : j == per_group ? "k" : "v";
      const int64_t head = j < per_group ? g * per_group + j : g;
      const int64_t row = head * head_dim + (j <= per_group ? moved : d);
      for (int64_t c = 0; c < cols; ++c) CHECK(parts[name][row * cols + c] == fused[r * cols + c]);
    }
    TensorRecipe pack = recipe_fused_qkv_pack("fused", "q", "k", "v", heads, kv_heads, head_dim,
                                              fused_shape, DType::kF32, permute);
    validate_recipe(
        pack, {{heads * head_dim, cols}, {kv_heads * head_dim, cols}, {kv_heads * head_dim, cols}});
    CHECK(evaluate(pack, parts) == fused);
  }
}

TEST_CASE("expert stack and unstack are inverse, experts in integer order") {
  const Shape stacked_shape = {12, 3, 2};
  const Values stacked = iota(num_elements(stacked_shape));
  std::map<std::string, Values> experts;
  std::vector<std::string> names;
  for (int64_t e = 0; e < 12; ++e) {
    names.push_back("e" + std::to_string(e));
    experts[names.back()] = evaluate(
        recipe_unstack(names.back(), "s", e, stacked_shape, DType::kF32), {{"s", stacked}});
    CHECK(experts[names.back()] == iota(6, e * 6));
  }
  TensorRecipe stack = recipe_stack("s", names, stacked_shape, DType::kF32);
  validate_recipe(stack, std::vector<Shape>(12, Shape{3, 2}));
  CHECK(evaluate(stack, experts) == stacked);
}

TEST_CASE("llama4 gate_up: cat of transposes on the last dim, gate half first") {
  const int64_t experts = 2, hidden = 3, dim = 4;
  const Shape part = {experts, hidden, dim};
  const Values w1 = iota(num_elements(part)), w3 = iota(num_elements(part), 1000);
  TensorRecipe cat = recipe_concat_transposed("gate_up", {"w1", "w3"}, {part, part}, DType::kF32);
  CHECK(cat.shape == Shape{experts, dim, 2 * hidden});
  validate_recipe(cat, {part, part});
  const Values gate_up = evaluate(cat, {{"w1", w1}, {"w3", w3}});
  for (int64_t e = 0; e < experts; ++e)
    for (int64_t d = 0; d < dim; ++d)
      for (int64_t f = 0; f < hidden; ++f) {
        CHECK(gate_up[(e * dim + d) * 2 * hidden + f] == w1[(e * hidden + f) * dim + d]);
        CHECK(gate_up[(e * dim + d) * 2 * hidden + hidden + f] == w3[(e * hidden + f) * dim + d]);
      }
  CHECK(evaluate(recipe_split_transposed("w1", "g", 0, {part, part}, DType::kF32),
                 {{"g", gate_up}}) == w1);
  CHECK(evaluate(recipe_split_transposed("w3", "g", 1, {part, part}, DType::kF32),
                 {{"g", gate_up}}) == w3);
  const Values down = evaluate(recipe_transpose_last2("t", "w", part, DType::kF32), {{"w", w1}});
  CHECK(evaluate(recipe_transpose_last2("w", "t", {experts, dim, hidden}, DType::kF32),
                 {{"t", down}}) == w1);
}

TEST_CASE("fused gate_up (transformers MoE): rows of w1 then rows of w3, per expert") {
  const int64_t experts = 2, hidden = 3, dim = 4;
  const Shape part = {experts, hidden, dim};
  const Values w1 = iota(num_elements(part)), w3 = iota(num_elements(part), 1000);
  TensorRecipe cat = recipe_concat_rows("gate_up", {"w1", "w3"}, {part, part}, DType::kF32);
  CHECK(cat.shape == Shape{experts, 2 * hidden, dim});
  validate_recipe(cat, {part, part});
  const Values gate_up = evaluate(cat, {{"w1", w1}, {"w3", w3}});
  for (int64_t e = 0; e < experts; ++e)
    for (int64_t f = 0; f < hidden; ++f)
      for (int64_t d = 0; d < dim; ++d) {
        CHECK(gate_up[(e * 2 * hidden + f) * dim + d] == w1[(e * hidden + f) * dim + d]);
        CHECK(gate_up[(e * 2 * hidden + hidden + f) * dim + d] == w3[(e * hidden + f) * dim + d]);
      }
  CHECK(evaluate(recipe_split_rows("w1", "g", 0, {part, part}, DType::kF32), {{"g", gate_up}}) ==
        w1);
  CHECK(evaluate(recipe_split_rows("w3", "g", 1, {part, part}, DType::kF32), {{"g", gate_up}}) ==
        w3);
}

TEST_CASE("v0.1 llama4 gate_up: x @ W experts [E, D, F] side by side on the last dim") {
  const int64_t experts = 2, hidden = 3, dim = 4;
  const Shape part = {experts, dim, hidden};
  const Values w1 = iota(num_elements(part)), w3 = iota(num_elements(part), 1000);
  TensorRecipe cat = recipe_concat_columns("gate_up", {"w1", "w3"}, {part, part}, DType::kF32);
  CHECK(cat.shape == Shape{experts, dim, 2 * hidden});
  validate_recipe(cat, {part, part});
  const Values gate_up = evaluate(cat, {{"w1", w1}, {"w3", w3}});
  for (int64_t e = 0; e < experts; ++e)
    for (int64_t d = 0; d < dim; ++d)
      for (int64_t f = 0; f < hidden; ++f) {
        CHECK(gate_up[(e * dim + d) * 2 * hidden + f] == w1[(e * dim + d) * hidden + f]);
        CHECK(gate_up[(e * dim + d) * 2 * hidden + hidden + f] == w3[(e * dim + d) * hidden + f]);
      }
  // Unequal parts split back at their own widths.
  const Shape wide = {experts, dim, 2};
  const Values w4 = iota(num_elements(wide), 2000);
  const Values both = evaluate(recipe_concat_columns("c", {"w1", "w4"}, {part, wide}, DType::kF32),
                               {{"w1", w1}, {"w4", w4}});
  CHECK(evaluate(recipe_split_columns("w1", "c", 0, {part, wide}, DType::kF32), {{"c", both}}) ==
        w1);
  CHECK(evaluate(recipe_split_columns("w4", "c", 1, {part, wide}, DType::kF32), {{"c", both}}) ==
        w4);
}

TEST_CASE("validate_recipe rejects overlapping, uncovered and out-of-range pieces") {
  TensorRecipe recipe = recipe_identity("a", "b", {4}, DType::kF32);
  recipe.pieces.push_back(recipe.pieces[0]);
  CHECK_THROWS_KIND(validate_recipe(recipe, {{4}}), ErrorKind::kInternal);
  TensorRecipe short_source = recipe_identity("a", "b", {4}, DType::kF32);
  CHECK_THROWS_KIND(validate_recipe(short_source, {{3}}), ErrorKind::kInternal);
  TensorRecipe uncovered = recipe_identity("a", "b", {4}, DType::kF32);
  uncovered.pieces[0].sizes = {3};
  CHECK_THROWS_KIND(validate_recipe(uncovered, {{4}}), ErrorKind::kInternal);
}
