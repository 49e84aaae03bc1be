# Quantized releases and --dtype casts against the real libraries: ckconv's from-hf of
# release-shaped folders (tests/make_releases.py --full-range: every fp8 byte, block scales
# over 2^-40..2^40, every FP4 code with scale exponents 0..254), written back by to-hf, equals
# PyTorch's `(w.float() * s).to(dtype)` and transformers' convert_moe_packed_tensors bit for
# bit; --dtype casts of f32 tensors holding ties, overflows, subnormals and NaN payloads equal
# `tensor.to(dtype)`.
source "$(dirname "$0")/lib.sh"
python3 "$CKCONV_SOURCE_DIR/tests/make_releases.py" full --full-range deepseek-v3 gpt-oss-20b
python3 "$CKCONV_SOURCE_DIR/tests/make_releases.py" specials --f32-specials llama-3.2-1b deepseek-v3
KEEP=(--keep-f32 'e_score_correction_bias')
for release in deepseek-v3 gpt-oss-20b; do
  for dtype in bf16 f16 f32; do
    torch_dtype=$([[ $dtype == bf16 ]] && echo bfloat16 || ([[ $dtype == f16 ]] && echo float16 || echo float32))
    args=()
    [[ $dtype != bf16 ]] && args=(--dtype "$dtype")
    out="$release.$dtype"
    "$CKCONV" from-hf -q "${args[@]}" -i "full/$release" -o "$out.native" --native-format safetensors
    "$CKCONV" to-hf -q --hf-config "full/$release/config.json" -i "$out.native" -o "$out.hf"
    reference "$release from-hf ${args[*]:-(default bf16)}: dequantized as PyTorch/transformers" \
      check_dequant.py "$IN/full/$release" "$IN/$out.hf" "$torch_dtype" "${KEEP[@]}"
  done
done
for release in llama-3.2-1b deepseek-v3; do
  for dtype in bf16 f16; do
    torch_dtype=$([[ $dtype == bf16 ]] && echo bfloat16 || echo float16)
    out="$release.cast.$dtype"
    "$CKCONV" from-hf -q --dtype "$dtype" -i "specials/$release" -o "$out.native" --native-format safetensors
    "$CKCONV" to-hf -q --hf-config "specials/$release/config.json" -i "$out.native" -o "$out.hf"
    reference "$release from-hf --dtype $dtype: casts as tensor.to()" \
      check_dequant.py "$IN/specials/$release" "$IN/$out.hf" "$torch_dtype" "${KEEP[@]}"
    out="$release.tohf.$dtype"
    "$CKCONV" from-hf -q -i "specials/$release" -o "$out.native" --native-format safetensors
    "$CKCONV" to-hf -q --dtype "$dtype" --hf-config "specials/$release/config.json" -i "$out.native" -o "$out.hf"
    reference "$release to-hf --dtype $dtype: casts as tensor.to()" \
      check_dequant.py "$IN/specials/$release" "$IN/$out.hf" "$torch_dtype" "${KEEP[@]}" \
      --dequantized-via bfloat16
  done
done
finish
