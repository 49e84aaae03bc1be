# The DCP path end to end with real PyTorch (issue 3 "done when"): a 2-rank torchtitan-like
# training checkpoint written by PyTorch (weights sharded across ranks, plus optimizer,
# lr_scheduler, dataloader and train_state) converts with `ckconv to-hf` to the same bytes
# as torchtitan's own output, the training state reported as skipped; `ckconv from-hf`
# writes DCP and torch.save checkpoints that PyTorch loads bit-exactly; verify passes from DCP.
source "$(dirname "$0")/lib.sh"
for fixture in llama3_tiny_gqa llama3_tiny_fused qwen3_tiny qwen3_tiny_fused qwen3_tiny_moe; do
  dir="$FIXTURES/adapters/$fixture"
  cp "$dir/native.safetensors" "$fixture.native.safetensors"
  reference "$fixture: PyTorch writes a 2-rank training checkpoint" dcp_check.py write-model-multirank \
    "$IN/$fixture.native.safetensors" "$IN/$fixture.dcp"
  # shellcheck disable=SC2046
  "$CKCONV" to-hf -q $(fixture_args "$fixture") -i "$fixture.dcp" -o "$fixture.hf" --json "$fixture.report.json"
  cmp -s "$fixture.hf/model.safetensors" "$dir/hf/model.safetensors" \
    && pass "$fixture: to-hf of the sharded DCP equals torchtitan's HF bytes" \
    || fail "$fixture: to-hf of the sharded DCP differs from torchtitan's HF bytes"
  grep -q '"train_state.step' "$fixture.report.json" && grep -q '"optimizer.state' "$fixture.report.json" \
    && pass "$fixture: the report lists the skipped training state" || fail "$fixture: skipped items not reported"
  # shellcheck disable=SC2046
  if "$CKCONV" verify -q $(fixture_args "$fixture") --native "$fixture.dcp"; then pass "$fixture: verify from DCP"; else fail "$fixture: verify from DCP"; fi
  cp "$dir/roundtrip_native.safetensors" "$fixture.roundtrip.safetensors"
  for format in dcp torch; do
    # shellcheck disable=SC2046
    "$CKCONV" from-hf -q $(fixture_args "$fixture") -i "$dir/hf" -o "$fixture.out_$format" --native-format "$format" --native-scheme 2026-06
  done
  reference "$fixture: dcp.load of ckconv's from-hf DCP" dcp_check.py load-dcp \
    "$IN/$fixture.out_dcp" "$IN/$fixture.roundtrip.safetensors"
  reference "$fixture: torch.load of ckconv's from-hf torch.save" dcp_check.py load-torch \
    "$IN/$fixture.out_torch/model.pt" "$IN/$fixture.roundtrip.safetensors"
  # shellcheck disable=SC2046
  if "$CKCONV" verify -q $(fixture_args "$fixture") --native "$fixture.out_torch"; then pass "$fixture: verify from torch.save"; else fail "$fixture: verify from torch.save"; fi
done
finish
