# Published HF releases as they are (tests/make_releases.py: few layers, small dims, the real
# key names, dtypes and config.json): each converts with `ckconv from-hf IN OUT` alone, the
# FP8 and MXFP4 ones dequantized to BF16; the output goes back to HF and verifies; a bf16
# e_score_correction_bias comes out float32 and to-hf accepts it.
source "$(dirname "$0")/lib.sh"
python3 "$CKCONV_SOURCE_DIR/tests/make_releases.py" rel
for release in deepseek-v3 gpt-oss-20b llama-3.1-8b llama-3.2-1b qwen3-0.6b qwen3-30b-a3b \
               llama-4-scout; do
  extra=()
  if "$CKCONV" from-hf -q -i "rel/$release" -o "$release.native" "${extra[@]}" 2>err.txt; then
    pass "$release: from-hf with nothing but the folder"
  else
    fail "$release: from-hf failed: $(head -c 600 err.txt)"
    continue
  fi
  if "$CKCONV" to-hf -q --hf-config "rel/$release/config.json" -i "$release.native" \
       -o "$release.hf" --verify-roundtrip 2>err.txt; then
    pass "$release: to-hf of the result round-trips"
  else
    fail "$release: to-hf failed: $(head -c 600 err.txt)"
  fi
done

# Dequantized weights are BF16 by default, --dtype otherwise; the scales are reported consumed.
"$CKCONV" from-hf -i rel/deepseek-v3 -o ds.dry --dry-run --verbose --json ds.json >/dev/null 2>&1
grep -q 'consumed by the fp8 block dequantization rule' ds.json &&
  pass "deepseek-v3: scale_inv tensors consumed by a named rule" ||
  fail "deepseek-v3: the report does not name the dequantization rule"
"$CKCONV" from-hf -q --dtype f32 -i rel/gpt-oss-20b -o gpt.f32 --native-format safetensors
"$CKCONV" inspect --json gpt.f32 >gpt.json
grep -q 'layers.0.moe.*mlp1_weight_EGD"' gpt.json && grep -q '"F32"' gpt.json &&
  ! grep -q '"BF16"' gpt.json && pass "gpt-oss-20b --dtype f32: every tensor F32" ||
  fail "gpt-oss-20b --dtype f32: $(head -c 300 gpt.json)"

# One dtype rule for e_score_correction_bias: a bf16 copy of it comes out f32 and to-hf takes it.
"$CKCONV" from-hf -q --dtype bf16 -i rel/deepseek-v3 -o ds.bf16 --native-format safetensors
"$CKCONV" to-hf -q --dtype bf16 --hf-config rel/deepseek-v3/config.json -i ds.bf16 -o ds.bf16.hf
"$CKCONV" inspect --json ds.bf16.hf >ds.hf.json
python3 - ds.hf.json <<'PY' && pass "e_score_correction_bias stays F32 under --dtype bf16" || fail "e_score_correction_bias dtype"
import json, sys
tensors = {t["name"]: t["dtype"] for t in json.load(open(sys.argv[1]))["tensors"]}
bias = [d for n, d in tensors.items() if n.endswith("e_score_correction_bias")]
others = {d for n, d in tensors.items() if not n.endswith("e_score_correction_bias")}
sys.exit(0 if bias and set(bias) == {"F32"} and others == {"BF16"} else 1)
PY
grep -q '"torch_dtype": "bfloat16"' ds.bf16.hf/config.json && pass "config.json torch_dtype follows --dtype" ||
  fail "config.json torch_dtype: $(grep dtype ds.bf16.hf/config.json)"
# An HF folder holding the bias in bf16 (as the issue found): from-hf widens it to f32 and
# to-hf accepts its own output.
python3 - "$CKCONV_SOURCE_DIR/tests" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import make_releases
config, tensors, shards = make_releases.deepseek_v3()
tensors = [(n, "BF16" if n.endswith("e_score_correction_bias") else d, s) for n, d, s in tensors]
make_releases.write_release("ds.bf16bias", config, tensors, shards)
PY
"$CKCONV" from-hf -q -i ds.bf16bias -o ds.again --native-format safetensors
"$CKCONV" inspect --json ds.again >again.json
python3 - again.json <<'PY' && pass "a bf16 e_score_correction_bias becomes an f32 expert_bias_E" || fail "expert_bias_E dtype"
import json, sys
tensors = {t["name"]: t["dtype"] for t in json.load(open(sys.argv[1]))["tensors"]}
sys.exit(0 if tensors["layers.1.moe.expert_bias_E"] == "F32" else 1)
PY
"$CKCONV" to-hf -q -i ds.again --hf-config rel/deepseek-v3/config.json -o ds.again.hf &&
  pass "to-hf accepts from-hf's expert_bias_E" || fail "to-hf rejects from-hf's expert_bias_E"
# Value-changing conversions verify the round trip from their output.
for cmd in "from-hf -i rel/deepseek-v3 -o ds.verified --verify-roundtrip" \
           "from-hf -i rel/gpt-oss-20b -o gpt.verified --verify-roundtrip --dtype f16" \
           "verify --hf rel/qwen3-30b-a3b --dtype bf16"; do
  # shellcheck disable=SC2086
  if out="$("$CKCONV" $cmd 2>&1)" && [[ "$out" == *"the round trip starts from its output"* ]]; then
    pass "$cmd: round trip from the output passes"
  else
    fail "$cmd: $(head -c 400 <<<"$out")"
  fi
done
finish
