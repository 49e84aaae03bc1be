# Every native format against torchtitan's fixtures: each fixture's native_dcp/ (written by
# PyTorch's dcp.save) converts to the same HF bytes as torchtitan's own to_hf, and ckconv's
# own DCP and torch.save outputs convert back to the same bytes (verify passes from each).
source "$(dirname "$0")/lib.sh"
for dir in "$FIXTURES"/adapters/*/; do
  fixture="$(basename "$dir")"
  # shellcheck disable=SC2046
  args=$(fixture_args "$fixture")
  expected="$dir/hf/model.safetensors"
  # gpt_oss's fixture hf/ is torchtitan's *_blocks layout, the default.
  # shellcheck disable=SC2086
  "$CKCONV" to-hf -q $args -i "$dir/native_dcp" -o "$fixture.from_dcp"
  same_bytes "$fixture.from_dcp/model.safetensors" "$expected" "$fixture: to-hf of PyTorch's DCP equals torchtitan"
  for format in dcp torch; do
    # shellcheck disable=SC2086
    "$CKCONV" from-hf -q $args -i "$dir/hf" -o "$fixture.$format" --native-format "$format" --verify-roundtrip
    # shellcheck disable=SC2086
    "$CKCONV" to-hf -q $args -i "$fixture.$format" -o "$fixture.$format.hf"
    same_bytes "$fixture.$format.hf/model.safetensors" "$expected" "$fixture: HF -> $format -> HF is byte-exact"
  done
  # shellcheck disable=SC2086
  if "$CKCONV" verify -q $args --native "$fixture.dcp"; then pass "$fixture: verify from DCP"; else fail "$fixture: verify from DCP"; fi
done
"$CKCONV" inspect "$FIXTURES/formats/torch2.14_py3.14/ck" | grep "format:  dcp" >/dev/null && pass "inspect shows DCP" || fail "inspect DCP"
"$CKCONV" inspect "$FIXTURES/formats/torch2.6_py3.13/sd.pt" | grep "format:  torch_save" >/dev/null && pass "inspect shows torch.save" || fail "inspect torch.save"
# Deterministic DCP bytes: the same input written twice gives identical files.
"$CKCONV" from-hf -q $(fixture_args qwen3_tiny_moe) -i "$FIXTURES/adapters/qwen3_tiny_moe/hf" -o again --native-format dcp --threads 2
for file in .metadata __0_0.distcp; do
  same_bytes "again/$file" "qwen3_tiny_moe.dcp/$file" "DCP $file bytes are deterministic"
done
finish
