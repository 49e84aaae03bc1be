# DCP and torch.save interop with the oldest supported PyTorch, 2.6 (Debian trixie chroot,
# CKCONV_REFENV_SUITE=trixie): PyTorch 2.6 loads ckconv's DCP (dcp.load, no process group)
# and torch.save (weights_only) output bit-exactly, and a 2-rank training checkpoint written
# by PyTorch 2.6 converts to torchtitan's HF bytes.
export CKCONV_REFENV_SUITE=trixie
source "$(dirname "$0")/lib.sh"
for fixture in llama3_tiny_bf16 qwen3_tiny_moe gpt_oss_tiny deepseek_v3_tiny; do
  dir="$FIXTURES/adapters/$fixture"
  cp "$dir/roundtrip_native.safetensors" "$fixture.expected.safetensors"
  for format in dcp torch; do
    # shellcheck disable=SC2046
    "$CKCONV" from-hf -q $(fixture_args "$fixture") -i "$dir/hf" -o "$fixture.$format" --native-format "$format" --native-scheme 2026-06
  done
  reference "$fixture: PyTorch 2.6 dcp.load of ckconv's DCP" dcp_check.py load-dcp "$IN/$fixture.dcp" "$IN/$fixture.expected.safetensors"
  reference "$fixture: PyTorch 2.6 torch.load of ckconv's torch.save" dcp_check.py load-torch "$IN/$fixture.torch/model.pt" "$IN/$fixture.expected.safetensors"
done
for fixture in llama3_tiny_fused qwen3_tiny_moe; do
  dir="$FIXTURES/adapters/$fixture"
  cp "$dir/native.safetensors" "$fixture.native.safetensors"
  reference "$fixture: PyTorch 2.6 writes a 2-rank training checkpoint" dcp_check.py write-model-multirank \
    "$IN/$fixture.native.safetensors" "$IN/$fixture.trained"
  # shellcheck disable=SC2046
  "$CKCONV" to-hf -q $(fixture_args "$fixture") -i "$fixture.trained" -o "$fixture.hf"
  cmp -s "$fixture.hf/model.safetensors" "$dir/hf/model.safetensors" \
    && pass "$fixture: to-hf of PyTorch 2.6's sharded DCP equals torchtitan" \
    || fail "$fixture: to-hf of PyTorch 2.6's sharded DCP differs"
done
finish
