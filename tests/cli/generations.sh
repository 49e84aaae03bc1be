# shellcheck shell=bash
# torchtitan native key schemes (families/native_scheme.h) against checkpoints written by
# each generation's own code (fixtures/generations, see its README): to-hf detects the
# scheme and gives that generation's to_hf bytes; from-hf in the scheme gives the native
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

for dir in "$GENERATIONS"/*/*/; do
  dir="${dir%/}"
  name="$(basename "$dir")"
  generation="$(basename "$(dirname "$dir")")"
  label="$generation/$name"
  args="$(gen_args "$generation" "$name")"
  # shellcheck disable=SC2086
  run "$label: to-hf" "$CKCONV" to-hf -q $args -i "$dir/native.safetensors" -o "$name.hf" --json "$name.json"
  same_bytes "$name.hf/model.safetensors" "$dir/hf/model.safetensors" "$label: to-hf equals torchtitan's to_hf"
  [[ "$(scheme_of "$name.json")" == "$generation" ]] && pass "$label: detected as $generation" ||
    fail "$label: detected as $(scheme_of "$name.json"), not $generation"
  # Without -m/-f the model is detected (llama3's head count, which shapes cannot show, given).
  heads=()
  [[ "$name" != llama3* ]] || heads=(--set "n_heads=$(sed -n 's/^ *"n_heads": *\([0-9]*\).*/\1/p' "$dir/flavor.json")")
  run "$label: to-hf with the model detected" "$CKCONV" to-hf -q "${heads[@]}" "$dir/native.safetensors" "$name.detected.hf"
  same_bytes "$name.detected.hf/model.safetensors" "$dir/hf/model.safetensors" "$label: detected to-hf equals torchtitan's to_hf"
  if [[ -d "$dir/native.dcp" ]]; then
    # shellcheck disable=SC2086
    run "$label: to-hf from DCP" "$CKCONV" to-hf -q $args -i "$dir/native.dcp" -o "$name.dcp.hf"
    same_bytes "$name.dcp.hf/model.safetensors" "$dir/hf/model.safetensors" "$label: DCP to-hf equals torchtitan's to_hf"
  fi
  # shellcheck disable=SC2086
  run "$label: from-hf --native-scheme $generation" "$CKCONV" from-hf -q $args -i "$dir/hf" -o "$name.native" \
    --native-format safetensors --native-scheme "$generation"
  same_bytes "$name.native/model.safetensors" "$dir/native.safetensors" "$label: from-hf gives the native checkpoint back"
  # shellcheck disable=SC2086
  run "$label: verify keeps the scheme" "$CKCONV" verify -q $args --native "$dir/native.safetensors"
  # Every scheme with the family: from-hf writes it, to-hf reads it back to the same HF bytes
  # (MTP blocks exist only in 2026-08; a model with them is checked below).
  for scheme in v0.2 2026-06 2026-08; do
    [[ "$name" == *_mtp && "$scheme" != 2026-08 ]] && continue
    # shellcheck disable=SC2086
    if ! "$CKCONV" from-hf -q $args -i "$dir/hf" -o "$name.$scheme" --native-format safetensors \
      --native-scheme "$scheme" 2>"$name.$scheme.err"; then
      grep -q "has no" "$name.$scheme.err" && pass "$label: $scheme has no such model (refused)" ||
        fail "$label: from-hf --native-scheme $scheme: $(cat "$name.$scheme.err")"
      continue
    fi
    # shellcheck disable=SC2086
    run "$label: to-hf of the $scheme output" "$CKCONV" to-hf -q $args -i "$name.$scheme" -o "$name.$scheme.hf" --json "$name.$scheme.json"
    same_bytes "$name.$scheme.hf/model.safetensors" "$dir/hf/model.safetensors" "$label: $scheme round trip gives the same HF bytes"
    [[ "$(scheme_of "$name.$scheme.json")" == "$scheme" || "$scheme" == 2026-06 ]] && pass "$label: $scheme output detected as $scheme" ||
      fail "$label: $scheme output detected as $(scheme_of "$name.$scheme.json")"
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
expect_exit 3 "output.weight (v0.2)" -- "$CKCONV" to-hf $(gen_args 2026-08 llama3_tiny) -i mixed.safetensors -o refused.hf
finish
