# shellcheck shell=bash
# ckconv's from-hf output in each torchtitan generation's scheme, loaded by that generation's
# own model class: load_state_dict(strict=True), then every tensor bit-equal to the file.
# Needs torchtitan's source: CKCONV_TORCHTITAN_GIT names a git clone of pytorch/torchtitan
# (bare or not) holding the commits of fixtures/generations/README.md; without it the test is
# skipped (exit 77).
# shellcheck source=tests/interop/lib.sh
source "$(dirname "$0")/lib.sh"
if [[ -z "${CKCONV_TORCHTITAN_GIT:-}" ]] || ! git -C "$CKCONV_TORCHTITAN_GIT" rev-parse -q --verify HEAD >/dev/null; then
  echo "SKIPPED: set CKCONV_TORCHTITAN_GIT to a git clone of pytorch/torchtitan" >&2
  exit 77
fi
GENERATIONS="$FIXTURES/generations"
SCRIPT="$CKCONV_SOURCE_DIR/tests/generations/torchtitan_fixtures.py"
for generation_dir in "$GENERATIONS"/*/; do
  generation="$(basename "$generation_dir")"
  commit="$(sed -n 's/.*"torchtitan_commit": *"\([^"]*\)".*/\1/p' "$generation_dir"/*/flavor.json | head -n1)"
  mkdir -p "tt-$generation"
  git -C "$CKCONV_TORCHTITAN_GIT" archive --prefix=torchtitan/ "$commit:torchtitan" | tar -x -C "tt-$generation"
  cp "$CKCONV_SOURCE_DIR"/tests/generations/tt_models_*.py "tt-$generation/"
  for dir in "$generation_dir"*/; do
    dir="${dir%/}"
    name="$(basename "$dir")"
    json="$dir/flavor.json"
    family="$(sed -n 's/^ *"family": *"\([^"]*\)".*/\1/p' "$json")"
    # HF input: torchtitan's to_hf output, or ckconv's where that adapter is broken.
    hf="$dir/hf"
    if [[ ! -d "$hf" ]]; then
      hf="$generation-$name.hf"
      "$CKCONV" to-hf -q -m "$family" -f debugmodel --set-from "$json" -i "$dir/native.safetensors" -o "$hf"
    fi
    if ! "$CKCONV" from-hf -q -m "$family" -f debugmodel --set-from "$json" -i "$hf" \
      -o "$generation-$name.native" --native-format safetensors --native-scheme "$generation"; then
      fail "$generation/$name: from-hf"
      continue
    fi
    if "$REFENV" run "$SCRIPT" load "$IN/tt-$generation" "$generation" "$name" "$IN/$generation-$name.native/model.safetensors"; then
      pass "$generation/$name: torchtitan $commit loads ckconv's output strictly, bit-equal"
    else
      fail "$generation/$name: torchtitan $commit load_state_dict(strict=True)"
    fi
  done
done
finish
