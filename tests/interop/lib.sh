# Shared helpers for interop tests (sourced): the real PyTorch / safetensors / transformers
# run in the reference chroot (scripts/refenv.sh); test files live inside the chroot tree so
# no bind mounts are needed. Without the chroot a test exits 77 (ctest: skipped), loudly.
set -euo pipefail
: "${CKCONV:?}" "${CKCONV_SOURCE_DIR:?}"
FIXTURES="${CKCONV_FIXTURES:-$CKCONV_SOURCE_DIR/tests/fixtures}"
REFENV="$CKCONV_SOURCE_DIR/scripts/refenv.sh"
if ! "$REFENV" status >/dev/null 2>&1; then
  echo "SKIPPED: the reference environment is not available (run scripts/refenv.sh setup)" >&2
  exit 77
fi
ROOT="$("$REFENV" root)"
mkdir -p "$ROOT/tmp"
WORK="$(mktemp -d "$ROOT/tmp/ckconv-interop.XXXXXX")"
IN="${WORK#"$ROOT"}"  # the same directory as seen inside the chroot
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
failures=0
checks=0
pass() { checks=$((checks + 1)); echo "ok   $*"; }
fail() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL $*"; }
# reference LABEL SCRIPT ARGS...: run a checker in the chroot; it must exit 0.
reference() {
  local label="$1"
  shift
  local script="$CKCONV_SOURCE_DIR/tests/interop/$1"
  shift
  if "$REFENV" run "$script" "$@"; then pass "$label"; else fail "$label"; fi
}
fixture_field() { sed -n "s/^ *\"$2\": *\"\([^\"]*\)\".*/\1/p" "$FIXTURES/adapters/$1/flavor.json" | head -n1; }
fixture_args() {
  echo "-m $(fixture_field "$1" family) -f $(fixture_field "$1" base_flavor) --set-from $FIXTURES/adapters/$1/flavor.json"
}
finish() {
  echo "$((checks - failures)) passed, $failures failed"
  [[ "$failures" == 0 ]]
}
