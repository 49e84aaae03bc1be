# shellcheck shell=bash
# torchtitan native key schemes (families/native_scheme.h) against checkpoints written by
# each generation's own code (fixtures/generations, see its README): to-hf detects the
# scheme and gives that generation's to_hf bytes (where its adapter works; elsewhere the
# round trip and tests/interop/generations_logits.sh pin the output); from-hf in the scheme gives the native
# checkpoint back byte for byte; the same checkpoint renamed into the other schemes converts
# to the same HF bytes; mixed and unknown key sets are refused naming the deciding keys.
# shellcheck source=tests/cli/lib.sh
source "$(dirname "$0")/lib.sh"
GENERATIONS="$FIXTURES/generations"

run() {
  local label="$1"
  shift
  if "$@"; then pass "$label"; else fail "$label (exit $?)"; fi
}
gen_args() { # gen_args GENERATION NAME: -m/-f/--set-from of the fixture's flavor.json
  local json="$GENERATIONS/$1/$2/flavor.json"
  echo "-m $(sed -n 's/^ *"family": *"\([^"]*\)".*/\1/p' "$json") -f debugmodel --set-from $json"
}
scheme_of() { sed -n 's/.*"name": *"\([^"]*\)".*/\1/p' "$1" | head -n1; }

# Key sets that no key tells apart (docs/research/torchtitan_generations.md §6): a dense model
# of 2026-06 has the same keys as 2026-08's, and ckconv reads both as 2026-08; v0.1.0's llama3
# model-only export has v0.2's keys, read as v0.2.
detectable_as() { # detectable_as GENERATION NAME: the schemes detection may name
  case "$1/$2" in
    2026-06/llama3* | 2026-06/qwen3_tiny) echo "2026-06 2026-08" ;;
    v0.1/llama3*) echo "v0.1 v0.2" ;;
    *) echo "$1" ;;
  esac
}

# same_native OUT FIXTURE LABEL: from-hf's native checkpoint is the fixture byte for byte, or,
# where torchtitan saved expert_bias in bf16 (v0.2 gpt_oss builds its layers in bf16), the same
# tensors with that buffer in f32 (from-hf re-creates it as torchtitan initialises it: f32 zeros).
same_native() {
  if cmp -s "$1" "$2"; then pass "$3"; return; fi
  if python3 - "$1" "$2" <<'PY'; then pass "$3 (expert_bias f32)"; else fail "$3"; fi
import json, struct, sys
def read(path):
    data = open(path, "rb").read()
    size = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + size])
    header.pop("__metadata__", None)
    base = 8 + size
    return {k: (v["dtype"], v["shape"], data[base + v["data_offsets"][0]:base + v["data_offsets"][1]])
            for k, v in header.items()}
out, fixture = read(sys.argv[1]), read(sys.argv[2])
assert out.keys() == fixture.keys(), sorted(out.keys() ^ fixture.keys())
widened = 0
for key, (dtype, shape, raw) in fixture.items():
    if key.endswith("moe.expert_bias") and dtype == "BF16":
        got = out[key]
        assert got[0] == "F32" and got[1] == shape and not any(got[2]) and not any(raw), key
        widened += 1
    else:
        assert out[key] == (dtype, shape, raw), key
assert widened, "no bf16 expert_bias, yet the bytes differ"
PY
}

for dir in "$GENERATIONS"/*/*/; do
  dir="${dir%/}"
  name="$(basename "$dir")"
  generation="$(basename "$(dirname "$dir")")"
  label="$generation/$name"
  out="$generation-$name"
  args="$(gen_args "$generation" "$name")"
  # shellcheck disable=SC2086
  run "$label: to-hf" "$CKCONV" to-hf -q $args -i "$dir/native.safetensors" -o "$out.hf" --json "$out.json"
  # The HF reference: torchtitan's to_hf output, or where that generation's adapter is broken
  # (flavor.json "hf_reference") ckconv's own, pinned by the round trip below and by the
  # logits check of tests/interop/generations_logits.sh.
  hf="$dir/hf"
  if [[ -d "$hf" ]]; then
    same_bytes "$out.hf/model.safetensors" "$hf/model.safetensors" "$label: to-hf equals torchtitan's to_hf"
  else
    hf="$out.hf"
  fi
  detected="$(scheme_of "$out.json")"
  [[ " $(detectable_as "$generation" "$name") " == *" $detected "* ]] && pass "$label: detected as $detected" ||
    fail "$label: detected as $detected, not $generation"
  # Without -m/-f the model is detected (llama3's and llama4's head count, which shapes
  # cannot show, given; and qwen3's tying).
  heads=()
  [[ "$name" != llama* ]] || heads=(--set "n_heads=$(sed -n 's/^ *"n_heads": *\([0-9]*\).*/\1/p' "$dir/flavor.json")")
  # Tying is a flavor fact: both keys are saved, with equal values.
  [[ "$name" != qwen3_tiny ]] || heads=(--set enable_weight_tying=true)
  run "$label: to-hf with the model detected" "$CKCONV" to-hf -q "${heads[@]}" "$dir/native.safetensors" "$out.detected.hf"
  same_bytes "$out.detected.hf/model.safetensors" "$hf/model.safetensors" "$label: detected to-hf gives the same HF bytes"
  # native.dcp: the state dict saved with DCP; v0.1's export.dcp and full.dcp: what v0.1.0's
  # checkpoint manager saves (model-only export; full checkpoint, model keys under `model.`).
  for dcp in native export full; do
    [[ -d "$dir/$dcp.dcp" ]] || continue
    # shellcheck disable=SC2086
    run "$label: to-hf from $dcp.dcp" "$CKCONV" to-hf -q $args -i "$dir/$dcp.dcp" -o "$out.$dcp.hf" --json "$out.$dcp.json"
    same_bytes "$out.$dcp.hf/model.safetensors" "$hf/model.safetensors" "$label: $dcp.dcp to-hf gives the same HF bytes"
  done
  # shellcheck disable=SC2086
  run "$label: from-hf --native-scheme $generation" "$CKCONV" from-hf -q $args -i "$hf" -o "$out.native" \
    --native-format safetensors --native-scheme "$generation"
  same_native "$out.native/model.safetensors" "$dir/native.safetensors" "$label: from-hf gives the native checkpoint back"
  # shellcheck disable=SC2086
  run "$label: verify keeps the scheme" "$CKCONV" verify -q $args --native "$dir/native.safetensors"
  # Every scheme with the family: from-hf writes it, to-hf reads it back to the same HF bytes
  # (MTP blocks exist only in 2026-08; a model with them is checked below). Once per family,
  # from the 2026-06 fixtures (the generation that has all five): each generation's own
  # fixtures already pin its scheme above, and the CI time budget is shared.
  [[ "$generation" == 2026-06 || "$name" == *_mtp ]] || continue
  for scheme in v0.1 v0.2 2026-06 2026-08; do
    [[ "$name" == *_mtp && "$scheme" != 2026-08 ]] && continue
    # shellcheck disable=SC2086
    if ! "$CKCONV" from-hf -q $args -i "$hf" -o "$out.$scheme" --native-format safetensors \
      --native-scheme "$scheme" 2>"$out.$scheme.err"; then
      grep -q "has no" "$out.$scheme.err" && pass "$label: $scheme has no such model (refused)" ||
        fail "$label: from-hf --native-scheme $scheme: $(cat "$out.$scheme.err")"
      continue
    fi
    # shellcheck disable=SC2086
    run "$label: to-hf of the $scheme output" "$CKCONV" to-hf -q $args -i "$out.$scheme" -o "$out.$scheme.hf" --json "$out.$scheme.json"
    same_bytes "$out.$scheme.hf/model.safetensors" "$hf/model.safetensors" "$label: $scheme round trip gives the same HF bytes"
    detected="$(scheme_of "$out.$scheme.json")"
    [[ " $(detectable_as "$scheme" "$name") 2026-06 " == *" $detected "* ]] && pass "$label: $scheme output detected as $detected" ||
      fail "$label: $scheme output detected as $detected"
  done
done

# deepseek_v3 MTP: HF layer n_layers + j <-> mtp_layers.j (2026-08 only).
dsv3="$GENERATIONS/2026-08/deepseek_v3_tiny_mtp"
if "$CKCONV" inspect "$dsv3/hf" | grep 'model.layers.2.eh_proj.weight' >/dev/null; then
  pass "deepseek_v3 MTP layer 0 is HF layer n_layers"
else
  fail "deepseek_v3 MTP layer 0 is not HF layer n_layers"
fi
# shellcheck disable=SC2046
expect_exit 3 "mtp_layers.0" -- "$CKCONV" to-hf $(gen_args 2026-08 deepseek_v3_tiny_mtp) -i "$dsv3/native.safetensors" \
  -o refused.hf --native-scheme 2026-06

# A scheme without MTP never writes mtp_layers: from-hf of an HF checkpoint with an MTP layer
# either refuses its keys or leaves them out.
# shellcheck disable=SC2046
if "$CKCONV" from-hf -q $(gen_args 2026-08 deepseek_v3_tiny_mtp) -i "$dsv3/hf" -o nomtp.native \
  --native-format safetensors --native-scheme 2026-06 2>nomtp.err; then
  "$CKCONV" inspect nomtp.native | grep mtp_layers >/dev/null && fail "2026-06 output has mtp_layers" ||
    pass "2026-06 output has no mtp_layers"
else
  grep -q "model.layers.2." nomtp.err && pass "2026-06 from-hf refuses the HF MTP layer by name" ||
    fail "2026-06 from-hf of an MTP model: $(cat nomtp.err)"
fi

# DeepSeek-V3 YaRN: v0.2 and 2026-06 apply it only beyond the original 4096-token context,
# 2026-08 always; config.json names rope_scaling exactly where the native model applies it.
for case in v0.2/deepseek_v3_tiny:4096:no 2026-06/deepseek_v3_tiny:2048:no v0.2/deepseek_v3_tiny:16384:yes \
  2026-08/deepseek_v3_tiny_mtp:4096:yes; do
  IFS=: read -r model length yarn <<<"$case"
  out="yarn-${model/\//-}-$length"
  # shellcheck disable=SC2046
  if ! "$CKCONV" to-hf -q $(gen_args "${model%/*}" "${model#*/}") --set "max_seq_len=$length" \
    -i "$GENERATIONS/$model/native.safetensors" -o "$out"; then
    fail "$model max_seq_len $length: to-hf"
    continue
  fi
  written=no
  if grep -q '"rope_scaling"' "$out/config.json"; then written=yes; fi
  if [[ "$written" == "$yarn" ]]; then
    pass "$model max_seq_len $length: rope_scaling written: $written"
  else
    fail "$model max_seq_len $length: rope_scaling written: $written, want $yarn"
  fi
done

# Mixed generations: the 2026-08 experts with v0.2's head name.
llama="$GENERATIONS/2026-08/llama3_tiny"
"$CKCONV" from-hf -q $(gen_args 2026-08 llama3_tiny) -i "$llama/hf" -o old.native --native-format safetensors --native-scheme v0.2
if "$CKCONV" inspect old.native | grep -q 'output.weight' && ! "$CKCONV" inspect old.native | grep -q lm_head; then
  pass "v0.2 output names the head output.weight"
else
  fail "v0.2 output does not name the head output.weight"
fi
python3 - "$llama/native.safetensors" mixed.safetensors <<'PY'
import json, struct, sys
data = open(sys.argv[1], "rb").read()
size = struct.unpack("<Q", data[:8])[0]
header = json.loads(data[8:8 + size])
header["output.weight"] = header.pop("lm_head.weight")
text = json.dumps(header, separators=(",", ":")).encode()
text += b" " * (-len(text) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(text)) + text + data[8 + size:])
PY
# shellcheck disable=SC2046
expect_exit 3 "mix torchtitan generations" -- "$CKCONV" to-hf $(gen_args 2026-08 llama3_tiny) -i mixed.safetensors -o refused.hf
# shellcheck disable=SC2046
expect_exit 3 "output.weight (v0.1, v0.2)" -- "$CKCONV" to-hf $(gen_args 2026-08 llama3_tiny) -i mixed.safetensors -o refused.hf

# torchtitan v0.1.0's full checkpoint: the training state and the RoPE table `model.freqs_cis`
# are skipped by named rules; the model is read without its `model.` prefix and verified.
v01="$GENERATIONS/v0.1/llama3_tiny"
if python3 - v0.1-llama3_tiny.full.json <<'PY'; then
import json, sys
report = json.load(open(sys.argv[1]))
report = report.get("conversion", report)
rules = {entry["rule"]: entry["keys"] for entry in report["skipped_by_rule"]}
groups = {"training_state." + g for g in ("optimizer", "lr_scheduler", "dataloader", "train_state")}
assert set(rules) == groups | {"model_only_excluded"}, rules
assert rules["model_only_excluded"] == 1 and rules["training_state.train_state"] == 1, rules
assert "model.freqs_cis" in json.dumps(report["skipped"]), report["skipped"]
PY
  pass "v0.1 full checkpoint: training state and model.freqs_cis skipped by named rules"
else
  fail "v0.1 full checkpoint: skipped_by_rule"
fi
# shellcheck disable=SC2046
run "v0.1 full checkpoint: verify" "$CKCONV" verify -q $(gen_args v0.1 llama3_tiny) --native "$v01/full.dcp"
# Detected family and scheme without -m/-f (llama4: v0.1 from its shared_expert and
# tokens_per_expert keys).
if "$CKCONV" to-hf -q --json v01-llama4-detected.json --set n_heads=2 \
  "$GENERATIONS/v0.1/llama4_tiny_moe/export.dcp" v01-llama4-detected.hf; then
  same_bytes v01-llama4-detected.hf/model.safetensors "$GENERATIONS/v0.1/llama4_tiny_moe/hf/model.safetensors" \
    "v0.1 llama4 export, model detected: to-hf equals v0.2.2's to_hf"
  [[ "$(scheme_of v01-llama4-detected.json)" == v0.1 ]] && pass "v0.1 llama4 export detected as v0.1" ||
    fail "v0.1 llama4 export detected as $(scheme_of v01-llama4-detected.json)"
else
  fail "v0.1 llama4 export: to-hf with the model detected"
fi
# v0.1.0's deepseek_v3 is an experiment with HF's names that never saves a checkpoint (it loads
# HF safetensors): there is no v0.1 deepseek_v3 scheme, and HF-named weights are from-hf's input.
# shellcheck disable=SC2046
expect_exit 2 "never saves a checkpoint" -- "$CKCONV" from-hf $(gen_args v0.2 deepseek_v3_tiny) \
  -i "$GENERATIONS/v0.2/deepseek_v3_tiny/hf" -o refused.native --native-scheme v0.1
finish
