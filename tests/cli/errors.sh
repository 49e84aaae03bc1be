# Model-level and usage errors: each fails with its documented exit code (README "Exit
# codes") and a message naming the problem, and leaves no output behind.
source "$(dirname "$0")/lib.sh"
GQA="$FIXTURES/adapters/llama3_tiny_gqa"
QWEN="$FIXTURES/adapters/qwen3_tiny"
# shellcheck disable=SC2046
set -- $(fixture_args llama3_tiny_gqa)

expect_exit 2 "unknown model 'llama9'" -- "$CKCONV" to-hf -m llama9 -f x -i "$GQA/native.safetensors" -o out
expect_exit 2 "unknown flavor 'huge'" -- "$CKCONV" to-hf -m llama3 -f huge -i "$GQA/native.safetensors" -o out
expect_exit 2 "unknown config field 'n_layer'" -- "$CKCONV" to-hf -m llama3 -f debugmodel --set n_layer=2 -i "$GQA/native.safetensors" -o out
expect_exit 2 "expected a value like" -- "$CKCONV" to-hf -m llama3 -f debugmodel --set n_layers=2.5 -i "$GQA/native.safetensors" -o out
expect_exit 2 "" -- "$CKCONV" to-hf -m llama3
for size in 5XB 0x10 1.5 GB; do
  expect_exit 2 "invalid size '$size'" -- "$CKCONV" to-hf "$@" -i "$GQA/native.safetensors" -o out --max-shard-size "$size"
done
expect_exit 2 "must be positive" -- "$CKCONV" to-hf "$@" -i "$GQA/native.safetensors" -o out --max-shard-size 0MB
# Wrong flavor: the shapes named, expected against found.
expect_exit 3 "shape mismatches" -- "$CKCONV" to-hf -m llama3 -f debugmodel -i "$GQA/native.safetensors" -o out
expect_exit 3 "qkv_linear.wq.weight: expected [128, 128], found [64, 64]" -- "$CKCONV" to-hf "$@" --set n_heads=2 --set n_kv_heads=2 --set dim=128 -i "$GQA/native.safetensors" -o out
# A qwen3 checkpoint claimed as llama3: missing and unexpected keys, by name.
expect_exit 3 "unexpected tensors" -- "$CKCONV" to-hf "$@" -i "$QWEN/native.safetensors" -o out
expect_exit 3 "layers.0.attention.q_norm.weight" -- "$CKCONV" to-hf "$@" -i "$QWEN/native.safetensors" -o out
# An HF checkpoint given to to-hf (and a native one to from-hf).
expect_exit 3 "missing tensors" -- "$CKCONV" to-hf "$@" -i "$GQA/hf" -o out
expect_exit 3 "model.embed_tokens.weight" -- "$CKCONV" from-hf "$@" -i "$GQA/native.safetensors" -o out
# Tied flavor claimed for an untied checkpoint: lm_head differs from the embeddings.
expect_exit 3 "differs from 'tok_embeddings.weight'" -- "$CKCONV" to-hf "$@" --set enable_weight_tying=true -i "$GQA/native.safetensors" -o out
# Missing input.
expect_exit 3 "no such file" -- "$CKCONV" to-hf "$@" -i nowhere.safetensors -o out
[[ ! -e out ]] && pass "no output left by failed runs" || fail "a failed run left 'out'"

# Existing output holding a checkpoint: refused without --force, replaced with it; files
# that are not ckconv's are kept either way (tests/cli/output_ownership.sh has the rest).
mkdir existing && touch existing/keep existing/model.safetensors
expect_exit 6 "use --force" -- "$CKCONV" to-hf "$@" -i "$GQA/native.safetensors" -o existing
[[ -e existing/keep && ! -s existing/model.safetensors ]] && pass "refused run kept the old output" || fail "old output damaged"
"$CKCONV" to-hf -q "$@" -i "$GQA/native.safetensors" -o existing --force
[[ -s existing/model.safetensors && -e existing/keep ]] && pass "--force replaced the checkpoint, kept the rest" || fail "--force"
# Output parent not writable (as root, use a parent that does not exist instead).
expect_exit 5 "does not exist" -- "$CKCONV" to-hf "$@" -i "$GQA/native.safetensors" -o missing/parent/out
ls -A | grep -q ckconv- && fail "staging directories left behind: $(ls -A)" || pass "no staging directories left"

# A dry run checks everything and writes nothing.
"$CKCONV" to-hf "$@" -i "$GQA/native.safetensors" -o dry --dry-run --json report.json >/dev/null 2>&1
[[ ! -e dry ]] && grep -q '"dry_run": true' report.json && pass "--dry-run writes no output, reports the plan" || fail "--dry-run"
finish
