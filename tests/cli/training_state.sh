# Full training checkpoints and last_save_model_only exports (tests/fixtures/training, written
# by real PyTorch in torchtitan's layout): to-hf and verify convert the model part, report the
# skipped training state per named rule (stderr and --json), and give the same HF bytes as the
# model weights alone. The refused storage features are cases of tests/cli/bad_inputs.sh.
source "$(dirname "$0")/lib.sh"
TRAINING="$FIXTURES/training"
tiny=(-m llama3 -f debugmodel --set dim=16 --set n_layers=1 --set n_heads=2 --set n_kv_heads=1
      --set vocab_size=32 --set hidden_dim=16)
moe=(-m qwen3 -f debugmodel_moe --set dim=16 --set n_layers=1 --set n_heads=2 --set n_kv_heads=1
     --set head_dim=8 --set vocab_size=32 --set moe_hidden_dim=8 --set num_experts=4)

# check_rules JSON: every training-state group has its rule, and nothing else was skipped.
check_rules() {
  python3 - "$1" "$2" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
report = report.get("conversion", report)
rules = {entry["rule"]: entry["keys"] for entry in report["skipped_by_rule"]}
expected = {"training_state." + g for g in ("optimizer", "lr_scheduler", "dataloader", "train_state")}
assert set(rules) == expected, rules
assert sum(rules.values()) == len(report["skipped"]), (rules, len(report["skipped"]))
assert rules["training_state.dataloader"] == 2 and rules["training_state.train_state"] == 2, rules
# v0.2's LambdaLR state has several keys, later generations save last_epoch alone.
assert (rules["training_state.lr_scheduler"] > 1) == (sys.argv[2] == "full_v0.2"), rules
PY
}

for fixture in full_v0.2 full_2026-08; do
  "$CKCONV" to-hf -q "${tiny[@]}" -i "$TRAINING/$fixture.model.safetensors" -o "$fixture.ref"
  if err="$("$CKCONV" to-hf "${tiny[@]}" -i "$TRAINING/$fixture" -o "$fixture.hf" \
              --json "$fixture.json" 2>&1)"; then
    pass "$fixture: to-hf converts the model part"
  else
    fail "$fixture: to-hf failed: $(head -c 600 <<<"$err")"
    continue
  fi
  same_bytes "$fixture.ref/model.safetensors" "$fixture.hf/model.safetensors" \
    "$fixture: HF bytes equal those of the model weights alone"
  [[ "$err" == *"key(s), not converted: training_state.optimizer "*", training_state.train_state 2"* ]] &&
    pass "$fixture: stderr names each skipped group's rule" ||
    fail "$fixture: stderr lacks the per-rule summary: $(grep skipped <<<"$err")"
  check_rules "$fixture.json" "$fixture" && pass "$fixture: --json counts the skipped keys per rule" ||
    fail "$fixture: --json skipped_by_rule"
done

if err="$("$CKCONV" verify --native "$TRAINING/full_2026-08" "${tiny[@]}" --json verify.json 2>&1)"; then
  pass "verify of a full training checkpoint passes on its model part"
else
  fail "verify of a full training checkpoint: $(head -c 600 <<<"$err")"
fi
[[ "$err" == *"not converted: training_state.optimizer"* ]] && check_rules verify.json full_2026-08 &&
  pass "verify reports the skipped training state (stderr and --json)" ||
  fail "verify does not report the skipped training state: $(grep skipped <<<"$err")"

# last_save_model_only with export_dtype bfloat16 casts every floating tensor, expert_bias too:
# to-hf widens the bias exactly (qwen3's to_hf drops it), the rest is the weights cast to bf16.
"$CKCONV" to-hf -q "${moe[@]}" -i "$TRAINING/export_qwen3_moe.model.safetensors" --dtype bf16 -o export.ref
if err="$("$CKCONV" to-hf -q "${moe[@]}" -i "$TRAINING/export_qwen3_moe" -o export.hf 2>&1)"; then
  pass "an export_dtype=bfloat16 MoE export (bf16 expert_bias_E) converts"
  same_bytes export.ref/model.safetensors export.hf/model.safetensors \
    "the export's HF bytes equal the f32 weights converted with --dtype bf16"
else
  fail "bf16 export: $(head -c 600 <<<"$err")"
fi
if out="$("$CKCONV" verify --native "$TRAINING/export_qwen3_moe" "${moe[@]}" 2>&1)" &&
   [[ "$out" == *"the round trip starts from its output"* ]]; then
  pass "verify of the bf16 export checks the round trip from its output"
else
  fail "verify of the bf16 export: $(head -c 600 <<<"$out")"
fi
finish
