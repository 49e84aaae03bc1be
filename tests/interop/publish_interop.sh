# The real libraries read a directory caught in the middle of a publish over an existing
# checkpoint (docs/output_safety.md) as the old checkpoint, and the finished publish as the new
# one: transformers through an index redirected to the kept shards (shards over shards of the
# same names) and with new shards and index beside an old model.safetensors (which it reads
# first); torch.distributed.checkpoint through an old .metadata beside the new data file, and
# a new DCP checkpoint whose data file took the second name. The mid-publish states are made
# by kill -9 at a pause point of the publish (CKCONV_TEST_PAUSE_AT).
source "$(dirname "$0")/lib.sh"
# shellcheck disable=SC2046
set -- $(fixture_args llama3_tiny_gqa)
"$CKCONV" init -q "$@" --seed 1 -o n1
"$CKCONV" init -q "$@" --seed 2 -o n2
two="--max-shard-size $(($(stat -c %s n1/model.safetensors) * 60 / 100))"

# kill_at POINT ARGS...: runs ckconv ARGS paused at POINT of its publish, then kills it.
kill_at() {
  local point="$1" pid
  shift
  : >pause.txt
  CKCONV_TEST_PAUSE_AT="$point" "$CKCONV" "$@" -q --force --no-sync 2>pause.txt &
  pid=$!
  until [[ -s pause.txt ]] || ! kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  grep -q "test pause at $point" pause.txt || fail "the run did not pause at $point"
}

# Shards over shards of the same names, killed with one new shard in and the index redirected.
# shellcheck disable=SC2086
"$CKCONV" to-hf -q "$@" -i n1 -o old2 $two
# shellcheck disable=SC2086
"$CKCONV" to-hf -q "$@" -i n2 -o new2 $two
cp -a old2 same
# Steps: keep, keep, redirect, config.json, shard 1, shard 2, index, drop.
# shellcheck disable=SC2086
kill_at publish-step-6 to-hf "$@" -i n2 -o same $two
[[ -d same/.ckconv-previous ]] && grep -q '.ckconv-previous/' same/model.safetensors.index.json &&
  ! cmp -s same/model-00001-of-00002.safetensors old2/model-00001-of-00002.safetensors &&
  pass "same shard names: killed with a new shard in and the old index redirected" ||
  fail "same shard names: not the mid-publish state: $(ls -A same)"
reference "same shard names, mid-publish: transformers loads the old checkpoint" \
  check_loads_as.py "$IN/same" "$IN/old2"
"$CKCONV" inspect same >/dev/null && pass "same shard names, mid-publish: ckconv reads it" ||
  fail "same shard names, mid-publish: ckconv refuses it"
# shellcheck disable=SC2086
"$CKCONV" to-hf -q "$@" -i n2 -o same $two --force
[[ ! -e same/.ckconv-previous ]] && pass "same shard names: the next run finished the publish" ||
  fail "same shard names: the kept folder is left"
reference "same shard names, finished: transformers loads the new checkpoint" \
  check_loads_as.py "$IN/same" "$IN/new2"

# Shards over one file, killed with the new shards and index beside the old model.safetensors.
"$CKCONV" to-hf -q "$@" -i n1 -o old1
cp -a old1 beside
# Steps: config.json, shard 1, shard 2, index, remove model.safetensors.
# shellcheck disable=SC2086
kill_at publish-step-5 to-hf "$@" -i n2 -o beside $two
[[ -e beside/model.safetensors && -e beside/model.safetensors.index.json ]] &&
  pass "shards over one file: killed with the new index beside the old file" ||
  fail "shards over one file: not the mid-publish state: $(ls -A beside)"
reference "shards over one file, mid-publish: transformers loads the old file" \
  check_loads_as.py "$IN/beside" "$IN/old1"

# DCP over DCP: killed with the new data file beside the old .metadata, then finished.
"$CKCONV" init -q "$@" --seed 1 --native-format dcp -o dcp
# Steps: __0_1.distcp, .metadata, remove __0_0.distcp.
kill_at publish-step-2 init "$@" --seed 2 --native-format dcp -o dcp
[[ -e dcp/__0_0.distcp && -e dcp/__0_1.distcp ]] && pass "DCP over DCP: killed with both data files" ||
  fail "DCP over DCP: not the mid-publish state: $(ls -A dcp)"
cp n1/model.safetensors n1.safetensors
cp n2/model.safetensors n2.safetensors
reference "DCP over DCP, mid-publish: dcp.load reads the old checkpoint" \
  dcp_check.py load-dcp "$IN/dcp" "$IN/n1.safetensors"
# The next run finishes that publish (then, without --force, refuses to write).
"$CKCONV" init -q "$@" --seed 2 --native-format dcp -o dcp 2>/dev/null && fail "DCP: no --force accepted"
[[ "$(ls -A dcp | tr '\n' ' ')" == ".metadata __0_1.distcp " ]] &&
  pass "DCP over DCP: the next run finished the publish, the data file is __0_1.distcp" ||
  fail "DCP over DCP: $(ls -A dcp)"
reference "DCP over DCP, finished: dcp.load reads the new checkpoint from __0_1.distcp" \
  dcp_check.py load-dcp "$IN/dcp" "$IN/n2.safetensors"
finish
