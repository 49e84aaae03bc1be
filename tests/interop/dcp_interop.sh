# ckconv's DCP and torch.save formats against the real PyTorch (issue 3):
#  - PyTorch (2 processes, gloo on loopback) writes a checkpoint with DTensors sharded across
#    ranks plus optimizer/train_state items; ckconv reads its model tensors bit-exactly;
#  - ckconv writes DCP directories and torch.save files (adapter fixtures and every dtype);
#    dcp.load, dcp_to_torch_save and torch.load(weights_only=True) read them bit-exactly.
# The ckconv side runs through the doctest cases of tests/interop/dcp_interop_cases.cpp, compiled
# into unit_tests (next to the ckconv binary in the build directory) but skipped unless asked.
source "$(dirname "$0")/lib.sh"
UNIT_TESTS="$(dirname "$CKCONV")/unit_tests"
[[ -x "$UNIT_TESTS" ]] || { echo "FAIL: $UNIT_TESTS not built"; exit 1; }
CASES=("$UNIT_TESTS" --no-skip)

reference "PyTorch writes a 2-rank sharded DCP checkpoint" dcp_check.py write-multirank "$IN/multirank"
if CKCONV_INTEROP_MULTIRANK_DIR="$WORK/multirank" "${CASES[@]}" -tc='dcp interop: a multi-rank*' >cases.log 2>&1 &&
   grep -q "1 passed" cases.log; then
  pass "ckconv reads the 2-rank checkpoint's model tensors bit-exactly and skips the training state"
else
  cat cases.log
  fail "ckconv reads the 2-rank checkpoint"
fi

if CKCONV_INTEROP_WRITE_DIR="$WORK/written" "${CASES[@]}" -tc='dcp interop: write*' >cases.log 2>&1 &&
   grep -q "1 passed" cases.log; then
  pass "ckconv writes DCP and torch.save checkpoints"
else
  cat cases.log
  fail "ckconv writes DCP and torch.save checkpoints"
fi
for case in llama3_tiny_bf16 qwen3_tiny_moe gpt_oss_tiny deepseek_v3_tiny dtypes; do
  if [[ ! -d "written/$case" ]]; then
    fail "$case: ckconv wrote no checkpoints to load"
    continue
  fi
  reference "$case: dcp.load of ckconv's DCP" dcp_check.py load-dcp \
    "$IN/written/$case/dcp" "$IN/written/$case/expected.safetensors"
  reference "$case: torch.load of ckconv's torch.save" dcp_check.py load-torch \
    "$IN/written/$case/model.pt" "$IN/written/$case/expected.safetensors"
done
finish
