# What to-hf and verify read from a native checkpoint itself (docs/model_resolution.md): the
# family from its keys, every shape-derivable field from its shapes, a built-in flavor when
# exactly one fits; the short forms of every fixture conversion; `ckconv list`, model aliases,
# errors that say what the input is, and the consistent CLI (positional paths, --dry-run of the
# output side, --json on failure, every error line prefixed).
source "$(dirname "$0")/lib.sh"

# to-hf with only what the shapes cannot show: the llama3/llama4 head count (q and k are
# [heads x head_dim, dim] for any split); qwen3, gpt_oss and deepseek_v3 show theirs.
for fixture in llama3_tiny_gqa llama3_tiny_fused llama3_tiny_tied llama3_tiny_bf16 llama4_tiny \
               qwen3_tiny qwen3_tiny_fused qwen3_tiny_moe qwen3_tiny_moe_nolb \
               gpt_oss_tiny deepseek_v3_tiny deepseek_v3_tiny_qlora; do
  dir="$FIXTURES/adapters/$fixture"
  extra=()
  case "$fixture" in llama*) extra=(--set n_heads=4) ;; esac
  "$CKCONV" to-hf -q "$dir/native.safetensors" "$fixture.hf" "${extra[@]}"
  same_bytes "$fixture.hf/model.safetensors" "$dir/hf/model.safetensors" "$fixture: to-hf IN OUT ${extra[*]}"
done

# The head count left open: exit 2 naming the field and the candidates.
expect_exit 2 "n_heads cannot be read from the checkpoint's shapes" -- \
  "$CKCONV" to-hf "$FIXTURES/adapters/llama3_tiny_gqa/native.safetensors" open.hf
expect_exit 2 "it could be any of 2, 4, 8, 16, 32" -- \
  "$CKCONV" to-hf "$FIXTURES/adapters/llama3_tiny_gqa/native.safetensors" open.hf

# A built-in flavor's checkpoint needs nothing: the one flavor that fits is chosen and said.
"$CKCONV" init -q debug -m llama3 -f debugmodel --native-format safetensors
"$CKCONV" to-hf -q debug flags.hf -m llama3 -f debugmodel
out="$("$CKCONV" to-hf debug detected.hf --json detected.json 2>&1)"
[[ "$out" == *"using llama3/debugmodel"* ]] && pass "to-hf says which flavor it chose" || fail "no flavor chosen: $out"
[[ "$out" == *"n_heads 16 from flavor debugmodel, not confirmed by the checkpoint"* ]] &&
  pass "the chosen flavor's head count is reported unconfirmed" || fail "head count not reported: $out"
same_bytes detected.hf/model.safetensors flags.hf/model.safetensors "detected flavor: same bytes as --model/--flavor"
same_bytes detected.hf/config.json flags.hf/config.json "detected flavor: same config.json"
python3 - detected.json <<'EOF' && pass "--json: every field with its source" || fail "--json sources"
import json, sys
r = json.load(open(sys.argv[1]))
f = r["resolution"]["fields"]
assert f["dim"] == {"value": 256, "source": "detected"}, f["dim"]
assert f["n_heads"] == {"value": 16, "source": "flavor debugmodel"}, f["n_heads"]
assert f["rope_theta"]["source"] == "defaults", f["rope_theta"]
assert r["ok"] is True and r["version"], r
assert all(len(f["xxh64"]) == 16 for f in r["conversion"]["files"]), r["conversion"]["files"]
EOF
"$CKCONV" to-hf -q debug family.hf --flavor debugmodel
same_bytes family.hf/model.safetensors flags.hf/model.safetensors "--flavor alone: the family from the keys"
if "$CKCONV" verify -q debug; then pass "verify PATH of a native checkpoint, model detected"; else fail "verify PATH native"; fi
if "$CKCONV" verify -q flags.hf; then pass "verify PATH of an HF folder, model from config.json"; else fail "verify PATH hf"; fi

# A flavor that does not fit says what the checkpoint is and what fixes the command.
out="$("$CKCONV" to-hf debug wrong.hf -m llama3 -f 8B 2>&1)" || true
[[ "$out" == *"this is llama3/debugmodel: use --flavor debugmodel"* ]] && pass "mismatch names the flavor that fits" || fail "mismatch: $out"
expect_exit 3 "nearest: llama3/" -- "$CKCONV" to-hf "$FIXTURES/adapters/llama3_tiny_gqa/native.safetensors" wrong.hf -f debugmodel

# Aliases of --model/--flavor.
out="$("$CKCONV" to-hf debug alias.hf --model llama --flavor debugmodel 2>&1)"
[[ "$out" == *"--model llama --flavor debugmodel is llama3/debugmodel"* ]] && pass "alias --model llama" || fail "alias: $out"
out="$("$CKCONV" to-hf debug alias2.hf --model Llama-3.1-8B 2>&1)" || true
[[ "$out" == *"--model Llama-3.1-8B is llama3/8B"* && "$out" == *"this is llama3/debugmodel"* ]] &&
  pass "alias Llama-3.1-8B resolved, then refused with the flavor that fits" || fail "alias 8B: $out"
out="$("$CKCONV" to-hf -q "$FIXTURES/adapters/qwen3_tiny_moe/native.safetensors" alias3.hf --model qwen3_moe 2>&1)"
same_bytes alias3.hf/model.safetensors "$FIXTURES/adapters/qwen3_tiny_moe/hf/model.safetensors" "alias --model qwen3_moe"

# ckconv list / flavors.
out="$("$CKCONV" list)"
[[ "$out" == *"qwen3  (HF model_type qwen3, qwen3_moe"* && "$out" == *"30B-A3B"* && "$out" == *"aka Llama-3.1-8B"* ]] &&
  pass "list shows families, HF names and flavors" || fail "list: $out"
"$CKCONV" flavors --json list.json
python3 -c "import json; d=json.load(open('list.json')); f={x['family'] for x in d['families']}; assert f=={'llama3','llama4','qwen3','gpt_oss','deepseek_v3'}, f" &&
  pass "flavors --json" || fail "flavors --json"

# Consistent CLI: CLI11's errors are prefixed, --help shows examples and defaults.
expect_exit 2 "ckconv: error: " -- "$CKCONV" to-hf --bogus a b
expect_exit 2 "ckconv: error: " -- "$CKCONV" to-hf
out="$("$CKCONV" to-hf --help)"
[[ "$out" == *"Examples:"* && "$out" == *"--block-mib UINT:INT in [1 - 4096]=4"* ]] && pass "--help: examples and defaults" || fail "help: $out"

# --dry-run checks the output side; --json is written on failure too.
mkdir -p exists && cp flags.hf/model.safetensors exists/
expect_exit 6 "use --force" -- "$CKCONV" to-hf debug exists --dry-run
expect_exit 5 "does not exist" -- "$CKCONV" to-hf debug missing/parent/out --dry-run
"$CKCONV" to-hf -q debug exists --dry-run --force && pass "--dry-run --force passes" || fail "--dry-run --force"
expect_exit 6 "use --force" -- "$CKCONV" from-hf flags.hf debug --dry-run
status=0
"$CKCONV" to-hf -q "$FIXTURES/adapters/llama3_tiny_gqa/native.safetensors" failed.hf -m llama3 -f debugmodel --json failed.json 2>/dev/null || status=$?
python3 - failed.json <<'EOF' && [[ "$status" == 3 ]] && pass "--json on failure: kind, code, message, keys" || fail "--json on failure (exit $status)"
import json, sys
r = json.load(open(sys.argv[1]))
e = r["error"]
assert r["ok"] is False and e["kind"] == "bad_input" and e["exit_code"] == 3, e
assert "does not match llama3/debugmodel" in e["message"], e["message"]
assert len(e["keys"]["shape mismatches"]) > 0, e["keys"]
EOF
finish
