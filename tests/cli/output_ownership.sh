# ckconv replaces only what it writes: writing into a git clone, into ".", into an empty
# folder; --force needed only over files of ckconv's kinds, which the report lists; stale
# shards and indexes of the previous checkpoint removed in the same publish.
source "$(dirname "$0")/lib.sh"
GQA="$FIXTURES/adapters/llama3_tiny_gqa"
# shellcheck disable=SC2046
set -- $(fixture_args llama3_tiny_gqa)
input="$GQA/native.safetensors"

no_leftovers() {  # no_leftovers DIR LABEL
  if ls -A "$1" | grep -q 'ckconv-'; then fail "$2: leftovers in $1: $(ls -A "$1")"; else pass "$2: no leftovers"; fi
}
same_tree() {  # same_tree A B LABEL: the same files (names and bytes) of ckconv's kinds
  local a b
  a="$(cd "$1" && ls -A | grep -E '^(model.*|config\.json|\.metadata|.*\.distcp)$' | sort)"
  b="$(cd "$2" && ls -A | grep -E '^(model.*|config\.json|\.metadata|.*\.distcp)$' | sort)"
  if [[ "$a" != "$b" ]]; then fail "$3: files differ: [$a] vs [$b]"; return; fi
  for name in $a; do
    cmp -s "$1/$name" "$2/$name" || { fail "$3: $name differs"; return; }
  done
  pass "$3"
}

"$CKCONV" to-hf -q "$@" -i "$input" -o reference
"$CKCONV" from-hf -q "$@" -i reference -o reference_dcp

# A clone of a hub repository: .git and the model card stay; no --force needed the first time.
git init -q clone
echo "# model card" > clone/README.md
echo '{"tokenizer": 1}' > clone/tokenizer.json
git -C clone add README.md tokenizer.json
git -C clone -c user.name=t -c user.email=t@t commit -qm card
"$CKCONV" to-hf -q "$@" -i "$input" -o clone && pass "into a clone without --force" || fail "into a clone"
[[ "$(cat clone/README.md)" == "# model card" && -f clone/tokenizer.json ]] && pass "clone: user files kept" ||
  fail "clone: user files lost: $(ls -A clone)"
git -C clone log --oneline | grep -q card && pass "clone: the git repository is intact" || fail "clone: .git damaged"
same_tree clone reference "clone: the checkpoint is the one written elsewhere"
no_leftovers clone "clone"
no_leftovers . "clone (parent)"

# Again: now the clone holds a checkpoint, so --force is needed; with it, the report lists
# the files replaced, and the user's files are still there.
expect_exit 6 "use --force" -- "$CKCONV" to-hf "$@" -i "$input" -o clone
"$CKCONV" to-hf "$@" -i "$input" -o clone --force --json report.json 2>stderr.txt
grep -q "replaced 2 file(s) of the previous output: config.json, model.safetensors" stderr.txt &&
  pass "--force: stderr lists the files replaced" || fail "--force: stderr: $(cat stderr.txt)"
tr -d ' \n' < report.json | grep -q '"replaced":\["config.json","model.safetensors"\]' &&
  pass "--force: the JSON report lists the files replaced" || fail "--force: report: $(cat report.json)"
[[ "$(cat clone/README.md)" == "# model card" ]] && git -C clone status --porcelain | grep -q '^?? config.json' &&
  pass "--force: user files and git state kept" || fail "--force: $(git -C clone status --porcelain)"

# "-o ." from a folder with unrelated files.
mkdir here && echo "my notes" > here/notes.txt
(cd here && "$CKCONV" to-hf -q "$@" -i "$input" -o .) && (cd here && "$CKCONV" to-hf -q "$@" -i "$input" -o . --force)
[[ "$(cat here/notes.txt)" == "my notes" ]] && pass "-o . kept notes.txt" || fail "-o . lost notes.txt"
same_tree here reference "-o .: the checkpoint"
no_leftovers here "-o ."

# An empty folder made beforehand needs no --force.
mkdir empty
"$CKCONV" to-hf -q "$@" -i "$input" -o empty && same_tree empty reference "an empty existing folder" ||
  fail "empty folder refused"

# 3 shards, then 2 shards: the third shard and the old index do not survive.
size=$(stat -c %s "$input")
"$CKCONV" to-hf -q "$@" -i "$input" -o sharded3 --max-shard-size $((size * 40 / 100))
"$CKCONV" to-hf -q "$@" -i "$input" -o sharded2 --max-shard-size $((size * 60 / 100))
ls sharded3 | grep -q 'of-00003' && ls sharded2 | grep -q 'of-00002' && ! ls sharded2 | grep -q 'of-00003' ||
  fail "shard sizes do not give 3 then 2 shards: $(ls sharded3) / $(ls sharded2)"
cp -a sharded3 shards && echo keep > shards/README.md
"$CKCONV" to-hf "$@" -i "$input" -o shards --force --max-shard-size $((size * 60 / 100)) 2>stderr.txt
same_tree shards sharded2 "3 shards then 2: exactly the 2-shard checkpoint"
grep -q "model-00003-of-00003.safetensors" stderr.txt && pass "3 then 2: the removed shard is reported" ||
  fail "3 then 2: $(cat stderr.txt)"
"$CKCONV" inspect shards >/dev/null && pass "3 then 2: inspect reads it" || fail "3 then 2: inspect"
# Then one file over the shards: no shard and no index left.
"$CKCONV" to-hf -q "$@" -i "$input" -o shards --force
same_tree shards reference "shards then one file: exactly the single-file checkpoint"
# And shards over one file, then the same shard count again.
"$CKCONV" to-hf -q "$@" -i "$input" -o shards --force --max-shard-size $((size * 60 / 100))
"$CKCONV" to-hf -q "$@" -i "$input" -o shards --force --max-shard-size $((size * 60 / 100))
same_tree shards sharded2 "one file then shards, then the same shards again"
[[ "$(cat shards/README.md)" == keep ]] && pass "shards: README.md kept" || fail "shards: README.md lost"

# DCP over DCP and over an HF checkpoint: one checkpoint left, the config.json companion kept.
# Over DCP the new data file takes a name the old .metadata does not use (__0_1.distcp);
# over that, the first name again; the data bytes are the same.
cp -a reference_dcp dcp
"$CKCONV" from-hf -q "$@" -i reference -o dcp --force
[[ "$(ls -A dcp | grep -E 'distcp|metadata' | tr '\n' ' ')" == ".metadata __0_1.distcp " ]] &&
  cmp -s dcp/__0_1.distcp reference_dcp/__0_0.distcp && grep -aq __0_1.distcp dcp/.metadata &&
  pass "DCP over DCP: a new data file name, the old one removed" || fail "DCP over DCP: $(ls -A dcp)"
"$CKCONV" inspect dcp >/dev/null && pass "DCP over DCP: inspect reads it" || fail "DCP over DCP: inspect"
"$CKCONV" from-hf -q "$@" -i reference -o dcp --force
same_tree dcp reference_dcp "DCP over DCP twice: the first name again, the same bytes"
cp -a reference mixed
"$CKCONV" from-hf -q "$@" -i reference -o mixed --force
[[ ! -e mixed/model.safetensors && -f mixed/config.json && -f mixed/.metadata ]] &&
  pass "DCP over HF: the old weights removed, config.json kept" || fail "DCP over HF: $(ls -A mixed)"
"$CKCONV" inspect mixed >/dev/null && pass "DCP over HF: inspect reads it" || fail "DCP over HF: inspect"

# An output that is a file is refused, with or without --force.
echo x > a_file
expect_exit 6 "is not a directory" -- "$CKCONV" to-hf "$@" -i "$input" -o a_file --force
finish
