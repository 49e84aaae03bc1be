# The core issue's "done when": --verify-roundtrip passes for the four dense seed pairs and
# for real-shaped tied/untied flavors made by `init --set n_layers=2`, and output bytes do
# not depend on the thread count.
source "$(dirname "$0")/lib.sh"
roundtrip() {  # roundtrip NAME DTYPE model-args...
  local name="$1" dtype="$2"
  shift 2
  "$CKCONV" init -q "$@" --dtype "$dtype" -o "$name.native"
  if "$CKCONV" to-hf -q "$@" -i "$name.native" -o "$name.hf" --verify-roundtrip; then
    pass "$name: to-hf --verify-roundtrip"
  else
    fail "$name: to-hf --verify-roundtrip"
  fi
}
roundtrip llama3_debug f32 -m llama3 -f debugmodel
roundtrip llama3_debug_fused f32 -m llama3 -f debugmodel_fused_qkv
roundtrip qwen3_debug f32 -m qwen3 -f debugmodel
roundtrip qwen3_debug_fused f32 -m qwen3 -f debugmodel_fused_qkv
roundtrip qwen3_debug_moe f32 -m qwen3 -f debugmodel_moe --set n_layers=2
# Real layer shapes; the vocabulary and the layer count are cut so the suite stays small (an
# 8B layer alone is 436 MB; the benchmark runs full-size embeddings).
roundtrip llama3_1B_tied bf16 -m llama3 -f 1B --set n_layers=2 --set vocab_size=4096
roundtrip llama3_8B bf16 -m llama3 -f 8B --set n_layers=1 --set vocab_size=4096
roundtrip qwen3_0.6B_tied bf16 -m qwen3 -f 0.6B --set n_layers=2 --set vocab_size=4096

# The eight seed pairs of torchtitan's round-trip test (docs/mappings.md), starting from
# torchtitan's own format: a DCP checkpoint.
for pair in llama3:debugmodel llama3:debugmodel_fused_qkv llama4:debugmodel gpt_oss:debugmodel \
            deepseek_v3:debugmodel qwen3:debugmodel qwen3:debugmodel_fused_qkv qwen3:debugmodel_moe; do
  model="${pair%%:*}" flavor="${pair##*:}"
  "$CKCONV" init -q -m "$model" -f "$flavor" --native-format dcp -o "$model.$flavor.dcp"
  if "$CKCONV" verify -q -m "$model" -f "$flavor" --native "$model.$flavor.dcp"; then
    pass "$pair: verify from DCP"
  else
    fail "$pair: verify from DCP"
  fi
done

# Determinism: the same input gives the same bytes at any thread count and buffer size
# (real 1B layer shapes, 2 layers: 250 MB).
ONE_B="-m llama3 -f 1B --set n_layers=2 --set vocab_size=4096"
"$CKCONV" to-hf -q $ONE_B -i llama3_1B_tied.native -o t1 --threads 1
"$CKCONV" to-hf -q $ONE_B -i llama3_1B_tied.native -o t2 --threads 2 --block-mib 1
same_bytes t1/model.safetensors t2/model.safetensors "to-hf bytes independent of threads and buffer size"
# --buffer-mib is the deprecated, hidden name of --block-mib; scripts using it keep working.
"$CKCONV" to-hf -q $ONE_B -i llama3_1B_tied.native -o t3 --buffer-mib 2
same_bytes t1/model.safetensors t3/model.safetensors "--buffer-mib still accepted"
same_bytes t1/model.safetensors llama3_1B_tied.hf/model.safetensors "to-hf bytes identical across runs"
"$CKCONV" init -q $ONE_B --dtype bf16 -o init2 --threads 2
same_bytes init2/model.safetensors llama3_1B_tied.native/model.safetensors "init bytes independent of threads"

# Sharded output: the same tensors, in HF-named shards with an index.
"$CKCONV" to-hf -q $ONE_B -i llama3_1B_tied.native -o sharded --max-shard-size 60MB
shards=(sharded/model-0000?-of-0000?.safetensors)
if [[ -f sharded/model.safetensors.index.json && ${#shards[@]} -gt 1 && ! -e sharded/model.safetensors ]]; then
  pass "sharded output has an index and numbered shards"
else
  fail "sharded output layout: $(ls sharded)"
fi
if "$CKCONV" verify -q $ONE_B --hf sharded; then pass "verify from sharded HF"; else fail "verify from sharded HF"; fi
# --max-shard-size spellings: 60MB = 0.06GB = 60M = 60000000 (B) bytes (decimal units, as
# huggingface_hub); 60MiB = 60Mi = 62914560 bytes (binary units).
for size in 0.06GB 60M 60000000 60000000B; do
  "$CKCONV" to-hf -q $ONE_B -i llama3_1B_tied.native -o "sharded_$size" --max-shard-size "$size"
  same_bytes sharded/model.safetensors.index.json "sharded_$size/model.safetensors.index.json" "--max-shard-size '$size' = 60MB"
done
for size in 60MiB 60Mi 62914560; do
  "$CKCONV" to-hf -q $ONE_B -i llama3_1B_tied.native -o "sharded_$size" --max-shard-size "$size"
done
same_bytes sharded_62914560/model.safetensors.index.json sharded_60MiB/model.safetensors.index.json "--max-shard-size 60MiB = 62914560"
same_bytes sharded_62914560/model.safetensors.index.json sharded_60Mi/model.safetensors.index.json "--max-shard-size 60Mi = 62914560"
finish
