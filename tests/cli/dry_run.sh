# --dry-run checks the output side as the real run will find it (README "Usage"): on
# every converting command and on init, which also resolves model aliases like the others.
# The "no space" checks run on a small file system of this test's own: a tmpfs mounted in a
# user and mount namespace (unshare -rm, no root needed), gone when the command ends. Where
# namespaces are not allowed, init --dry-run of a model larger than the disk's free space
# checks the same code path.
source "$(dirname "$0")/lib.sh"

# init: HF names and model types, as --model/--flavor of the other commands.
out="$("$CKCONV" init qwen -m Qwen3-0.6B --dry-run --json qwen.json 2>&1)"
[[ ! -e qwen ]] && pass "init --dry-run writes nothing" || fail "init --dry-run wrote qwen/"
[[ "$out" == *"--model Qwen3-0.6B is qwen3/0.6B"* && "$out" == *"model.safetensors"* ]] &&
  pass "init resolves Qwen3-0.6B and lists the files it would write" || fail "init alias: $out"
grep -q '"flavor": "0.6B"' qwen.json && grep -q '"dry_run": true' qwen.json &&
  pass "init --dry-run --json reports the plan" || fail "init --dry-run --json: $(cat qwen.json)"
"$CKCONV" init -q ds -m deepseek-v3 -f debugmodel --set n_layers=2 --json ds.json
grep -q '"model": "deepseek_v3"' ds.json && [[ -f ds/model.safetensors ]] &&
  pass "init -m deepseek-v3 is deepseek_v3" || fail "init -m deepseek-v3"
expect_exit 6 "use --force" -- "$CKCONV" init ds -m llama3 -f debugmodel --dry-run
expect_exit 5 "does not exist" -- "$CKCONV" init missing/parent/out -m llama3 -f debugmodel --dry-run
"$CKCONV" init -q ds -m llama3 -f debugmodel --dry-run --force && pass "init --dry-run --force passes" ||
  fail "init --dry-run --force"

"$CKCONV" init -q -m llama3 -f debugmodel -o debug --native-format safetensors  # 24 MB
"$CKCONV" to-hf -q debug debug.hf

mkdir small
# in_small_fs SIZE COMMAND...: COMMAND with a tmpfs of SIZE mounted on ./small.
in_small_fs() {
  local size="$1"
  shift
  unshare -rm bash -c 'mount -t tmpfs -o "size=$0" tmpfs small && exec "$@"' "$size" "$@"
}
if in_small_fs 1m true 2>/dev/null; then
  for command in to-hf from-hf; do
    input=debug
    [[ "$command" == from-hf ]] && input=debug.hf
    expect_exit 5 "not enough space for the output" -- \
      in_small_fs 4m "$CKCONV" "$command" "$input" small/out --dry-run
    in_small_fs 64m "$CKCONV" "$command" -q "$input" small/out --dry-run >/dev/null 2>&1 &&
      pass "$command --dry-run passes where the output fits" || fail "$command --dry-run with room"
  done
  expect_exit 5 "not enough space for the output" -- \
    in_small_fs 4m "$CKCONV" init small/out -m llama3 -f debugmodel --dry-run
  # The real run that the dry run refused fails too; the one it passed completes.
  expect_exit 5 "" -- in_small_fs 4m "$CKCONV" to-hf debug small/out
  in_small_fs 64m bash -c '"$0" to-hf -q debug small/out && cmp -s small/out/model.safetensors debug.hf/model.safetensors' \
    "$CKCONV" && pass "the run a dry run passed completes" || fail "the run with room failed"
  # verify --dtype: the cast output and both checkpoints of its round trip (about 3 x 12.4 MB)
  # are counted up front; counting two copies would start, then run out of space.
  expect_exit 5 "no room for the round trip's scratch checkpoints" -- \
    in_small_fs 32m "$CKCONV" verify debug --dtype bf16 --scratch small
  in_small_fs 48m "$CKCONV" verify -q debug --dtype bf16 --scratch small >/dev/null 2>&1 &&
    pass "verify --dtype runs in the room it asked for" || fail "verify --dtype with room"
else
  echo "skip: no unprivileged user and mount namespaces here (unshare -rm); the small-disk checks" \
    "run on the real disk only"
fi
# On the real disk: llama3/405B in float32 (1.6 TB) is more than most disks hold.
need=1600000000000
free="$(df -B1 --output=avail . | tail -n 1 | tr -d ' ')"
if [[ "$free" -lt "$need" ]]; then
  expect_exit 5 "not enough space for the output" -- "$CKCONV" init big -m llama3 -f 405B --dry-run
else
  echo "skip: $free bytes free, more than llama3/405B needs"
fi
finish
