# Shared helpers for the CLI tests (sourced, not run). Each test script runs the real binary
# ($CKCONV) in a scratch directory that is removed on exit.
set -euo pipefail
: "${CKCONV:?CKCONV must name the ckconv binary}"
: "${CKCONV_SOURCE_DIR:?CKCONV_SOURCE_DIR must name the repository}"
FIXTURES="${CKCONV_FIXTURES:-$CKCONV_SOURCE_DIR/tests/fixtures}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/ckconv-test.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
failures=0
checks=0

pass() { checks=$((checks + 1)); echo "ok   $*"; }
fail() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL $*"; }

# fixture_family FIXTURE / fixture_flavor FIXTURE: from the fixture's flavor.json.
fixture_field() { sed -n "s/^ *\"$2\": *\"\([^\"]*\)\".*/\1/p" "$FIXTURES/adapters/$1/flavor.json" | head -n1; }
fixture_args() {
  echo "-m $(fixture_field "$1" family) -f $(fixture_field "$1" base_flavor) --set-from $FIXTURES/adapters/$1/flavor.json"
}

# expect_exit CODE FRAGMENT -- command...: the command must exit with CODE and print
# FRAGMENT on stderr.
expect_exit() {
  local code="$1" fragment="$2"
  shift 3
  local out status=0
  out="$("$@" 2>&1 >/dev/null)" || status=$?
  if [[ "$status" == "$code" && "$out" == *"$fragment"* ]]; then
    pass "exit $code: $fragment"
  else
    fail "expected exit $code with '$fragment', got exit $status: $out"
  fi
}

same_bytes() {  # same_bytes A B LABEL
  if cmp -s "$1" "$2"; then pass "$3"; else fail "$3 ($1 vs $2: $(cmp "$1" "$2" 2>&1 | head -n1))"; fi
}

finish() {
  echo "$((checks - failures)) passed, $failures failed"
  [[ "$failures" == 0 ]]
}
