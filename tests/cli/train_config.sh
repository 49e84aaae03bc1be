# --train-config (docs/model_resolution.md "A torchtitan training config"): a TOML job config
# or a saved JSON config names the model like --model/--flavor, its export_dtype is to-hf's
# default --dtype, and it must agree with the flags and config.json. The refusals are cases of
# the bad-input corpus (tests/bad_inputs/make_corpus.py, train.*).
source "$(dirname "$0")/lib.sh"
configs="$CKCONV_SOURCE_DIR/tests/fixtures/train_configs"

"$CKCONV" init -q -m llama3 -f debugmodel -o debug --native-format safetensors
"$CKCONV" to-hf -q -m llama3 -f debugmodel debug flags.hf
out="$("$CKCONV" to-hf debug toml.hf --train-config "$configs/llama3_debugmodel.toml" --json toml.json 2>&1)"
same_bytes toml.hf/model.safetensors flags.hf/model.safetensors "to-hf --train-config TOML equals --model/--flavor"
same_bytes toml.hf/config.json flags.hf/config.json "the same config.json"
[[ "$out" == *"training config) names llama3/debugmodel"* ]] && pass "says what the training config names" ||
  fail "no note of the training config: $out"
[[ "$out" == *"n_heads 16 from train-config (flavor debugmodel), not confirmed by the checkpoint"* ]] &&
  pass "the unconfirmed head count names the training config" || fail "unconfirmed heads: $out"
[[ "$out" == *"each tensor keeps its dtype"* ]] && pass "export_dtype float32 casts nothing" || fail "float32: $out"
[[ "$out" == *"names hf_assets_path ./tests/assets/tokenizer"* ]] && pass "hf_assets_path is pointed out" ||
  fail "no hf_assets_path hint: $out"
python3 - toml.json <<'PY' && pass "--json: fields from train-config, the file and its export_dtype" || fail "--json resolution"
import json, sys
r = json.load(open(sys.argv[1]))["resolution"]
assert r["fields"]["n_layers"] == {"value": 6, "source": "train-config"}, r["fields"]["n_layers"]
assert r["fields"]["n_heads"]["source"] == "train-config"
t = r["train_config"]
assert t["kind"] == "toml" and t["family"] == "llama3" and t["flavor"] == "debugmodel", t
assert t["export_dtype"] == "float32" and t["dtype"] == {"value": None, "source": "train-config"}, t
PY

# export_dtype bfloat16: the default --dtype of to-hf (and of verify's round trip); --dtype wins.
"$CKCONV" to-hf -q -m llama3 -f debugmodel --dtype bf16 debug bf16_flags.hf
"$CKCONV" to-hf -q debug bf16_toml.hf --train-config "$configs/llama3_debugmodel_bf16.toml"
same_bytes bf16_toml.hf/model.safetensors bf16_flags.hf/model.safetensors "export_dtype bfloat16 casts like --dtype bf16"
same_bytes bf16_toml.hf/config.json bf16_flags.hf/config.json "config.json says bfloat16"
"$CKCONV" to-hf -q debug json.hf --train-config "$configs/llama3_debugmodel_saved.json"
same_bytes json.hf/model.safetensors bf16_flags.hf/model.safetensors "a saved JSON job config: model_spec and export_dtype"
"$CKCONV" to-hf -q debug keep.hf --train-config "$configs/llama3_debugmodel_bf16.toml" --dtype f32
same_bytes keep.hf/model.safetensors flags.hf/model.safetensors "--dtype overrides export_dtype"
out="$("$CKCONV" verify debug --train-config "$configs/llama3_debugmodel_bf16.toml" --json verify.json 2>&1)" ||
  fail "verify --train-config failed: $out"
grep -q '"round trip starts from its output\|a value-changing conversion' verify.json &&
  pass "verify of a native input checks to-hf's cast from export_dtype" || fail "verify did not cast: $out"

# from-hf and verify --hf: the training config names the model config.json describes.
"$CKCONV" from-hf -q flags.hf back.native --native-format safetensors \
  --train-config "$configs/llama3_debugmodel.toml"
same_bytes back.native/model.safetensors debug/model.safetensors "from-hf --train-config agrees with config.json"
"$CKCONV" verify -q flags.hf --train-config "$configs/llama3_debugmodel.toml" && pass "verify --hf --train-config" ||
  fail "verify --hf --train-config"

# The flags that agree with it are accepted; one that does not is refused naming both values.
"$CKCONV" to-hf -q debug agree.hf -m llama3 -f debugmodel --set n_layers=6 \
  --train-config "$configs/llama3_debugmodel.toml"
same_bytes agree.hf/model.safetensors flags.hf/model.safetensors "--model/--flavor/--set equal to the training config's"
"$CKCONV" init -q -m llama3 -f debugmodel --set n_heads=8 -o heads8 --native-format safetensors
"$CKCONV" to-hf -q -m llama3 -f debugmodel --set n_heads=8 heads8 heads8.hf
expect_exit 3 "num_attention_heads 8 in config.json, but n_heads 16 from train-config (flavor debugmodel)" -- \
  "$CKCONV" to-hf heads8 refused.hf --hf-config heads8.hf/config.json --train-config "$configs/llama3_debugmodel.toml"
expect_exit 3 "num_attention_heads 8 in config.json, but n_heads 16 from train-config (flavor debugmodel)" -- \
  "$CKCONV" from-hf heads8.hf refused.native --train-config "$configs/llama3_debugmodel.toml"
expect_exit 2 "is a Python training config (torchtitan's config_registry.py), which ckconv cannot execute" -- \
  "$CKCONV" to-hf debug refused.hf --train-config "$configs/config_registry.py"
[[ ! -e refused.hf && ! -e refused.native ]] && pass "refused runs wrote nothing" || fail "a refused run wrote output"
finish
