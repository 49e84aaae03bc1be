# shellcheck shell=bash
# What HF releases carry besides the model's own tensors (docs/mappings.md "Multi-token
# prediction", README "Upload-ready HF output"): a DeepSeek-V3 multi-token-prediction layer
# is dropped by from-hf (warned, or explicit with --drop-mtp), its copies of the embeddings
# and head checked; --hf-assets copies a release's tokenizer and generation files into the
# output, and without it a generation_config.json comes from --hf-config's token ids.
# shellcheck source=tests/cli/lib.sh
source "$(dirname "$0")/lib.sh"

run() {
  local label="$1"
  shift
  if "$@"; then pass "$label"; else fail "$label (exit $?)"; fi
}
ds_dir="$FIXTURES/adapters/deepseek_v3_tiny"
# shellcheck disable=SC2207
ds_args=($(fixture_args deepseek_v3_tiny))
python3 "$CKCONV_SOURCE_DIR/tests/bad_inputs/mtp_layer.py" "$ds_dir/hf" mtp.hf

# Dropped with a warning naming --drop-mtp; the native output is the one without the layer.
log="$("$CKCONV" from-hf "${ds_args[@]}" --native-scheme 2026-06 -i mtp.hf -o mtp.native --native-format safetensors --json mtp.json 2>&1)" ||
  fail "from-hf of a checkpoint with an MTP layer: $log"
same_bytes mtp.native/model.safetensors "$ds_dir/roundtrip_native.safetensors" "MTP dropped: native equals torchtitan's"
if [[ "$log" == *"multi-token-prediction"*"--drop-mtp"* ]]; then pass "MTP drop warned"; else fail "no MTP warning: $log"; fi
run "MTP in the --json report" grep -q '"mtp_layers_dropped": 1' mtp.json
run "MTP report names the native key it maps" grep -q 'mtp_layers.0.moe.router.gate.weight' mtp.json
log="$("$CKCONV" from-hf -q "${ds_args[@]}" --native-scheme 2026-06 --drop-mtp -i mtp.hf -o mtp2.native --native-format safetensors 2>&1)" ||
  fail "from-hf --drop-mtp: $log"
if [[ "$log" != *"multi-token-prediction"* ]]; then pass "--drop-mtp: dropped without a warning"; else fail "--drop-mtp printed: $log"; fi
same_bytes mtp2.native/model.safetensors "$ds_dir/roundtrip_native.safetensors" "--drop-mtp: native equals torchtitan's"
run "verify --hf with an MTP layer" "$CKCONV" verify -q "${ds_args[@]}" --drop-mtp --hf mtp.hf
# Fused experts and an MTP layer together.
"$CKCONV" to-hf -q "${ds_args[@]}" --hf-expert-layout fused -i "$ds_dir/native.safetensors" -o fused.hf
cp "$ds_dir/hf/config.json" fused.hf/config.json
python3 "$CKCONV_SOURCE_DIR/tests/bad_inputs/mtp_layer.py" fused.hf fused_mtp.hf
run "fused experts + MTP: from-hf" \
  "$CKCONV" from-hf -q "${ds_args[@]}" --native-scheme 2026-06 --drop-mtp -i fused_mtp.hf -o fused_mtp.native --native-format safetensors
same_bytes fused_mtp.native/model.safetensors "$ds_dir/roundtrip_native.safetensors" "fused + MTP: native equals torchtitan's"
# A partial MTP layer is an error, not a silent drop.
python3 - mtp.hf partial.hf <<'PY'
import os, sys
sys.path.insert(0, os.path.join(os.environ["CKCONV_SOURCE_DIR"], "tests", "bad_inputs"))
import mtp_layer
tensors = [t for t in mtp_layer.read_safetensors(os.path.join(sys.argv[1], "model.safetensors"))
           if t[0] != "model.layers.3.hnorm.weight"]
os.makedirs(sys.argv[2])
mtp_layer.write_safetensors(os.path.join(sys.argv[2], "model.safetensors"), tensors)
PY
cp mtp.hf/config.json partial.hf/
expect_exit 3 "model.layers.3.hnorm.weight" -- \
  "$CKCONV" from-hf -q "${ds_args[@]}" --native-scheme 2026-06 -i partial.hf -o partial.native

# --hf-assets: the release's tokenizer and generation files, byte for byte; nothing else.
mkdir assets
for name in tokenizer.json tokenizer_config.json special_tokens_map.json chat_template.jinja generation_config.json; do
  echo "{\"file\": \"$name\"}" >"assets/$name"
done
echo "not copied" >assets/README.md
q_dir="$FIXTURES/adapters/qwen3_tiny"
# shellcheck disable=SC2207
q_args=($(fixture_args qwen3_tiny))
run "to-hf --hf-assets" "$CKCONV" to-hf -q "${q_args[@]}" --hf-assets assets -i "$q_dir/native.safetensors" -o assets.hf
for name in tokenizer.json tokenizer_config.json special_tokens_map.json chat_template.jinja generation_config.json; do
  same_bytes "assets/$name" "assets.hf/$name" "--hf-assets copies $name"
done
run "--hf-assets leaves other files" test ! -e assets.hf/README.md
# Without assets: generation_config.json from --hf-config's token ids, and a note.
python3 -c 'import json, sys; c = json.load(open(sys.argv[1])); c.update(bos_token_id=7, eos_token_id=[8, 9]); json.dump(c, open("release_config.json", "w"))' \
  "$q_dir/hf/config.json"
log="$("$CKCONV" to-hf "${q_args[@]}" --hf-config release_config.json -i "$q_dir/native.safetensors" -o ids.hf 2>&1)" ||
  fail "to-hf --hf-config with token ids: $log"
run "generation_config.json from the token ids" grep -q '"bos_token_id": 7' ids.hf/generation_config.json
run "generation_config.json eos list" grep -q '"eos_token_id": \[' ids.hf/generation_config.json
if [[ "$log" == *"no tokenizer included"* ]]; then pass "says no tokenizer was included"; else fail "no tokenizer note: $log"; fi
mkdir empty_assets
expect_exit 2 "holds none of the files it copies" -- \
  "$CKCONV" to-hf -q "${q_args[@]}" --hf-assets empty_assets -i "$q_dir/native.safetensors" -o e1
# Asset files are ckconv's in an existing output: replaced with --force.
mkdir existing && echo old >existing/tokenizer.json
expect_exit 6 "" -- "$CKCONV" to-hf -q "${q_args[@]}" --hf-assets assets -i "$q_dir/native.safetensors" -o existing
run "--force replaces an old tokenizer.json" \
  "$CKCONV" to-hf -q "${q_args[@]}" --hf-assets assets -i "$q_dir/native.safetensors" -o existing --force
same_bytes assets/tokenizer.json existing/tokenizer.json "replaced tokenizer.json is the new one"
finish
