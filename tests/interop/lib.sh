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
# One checker server per test script (started by the first check) runs every check, so
# PyTorch is imported once rather than once per check.
server_pid=""
stop_server() {
  [[ -n "$server_pid" ]] || return 0
  # EOF on jobs ends the server; its exit line is read into the FIFO's buffer before the
  # last descriptor closes.
  exec {jobs_fd}>&-
  wait "$server_pid" || true
  exec {done_fd}<&-
  server_pid=""
}
# Kills process $1 and everything it started (the server, its children and their ranks).
kill_tree() {
  local child IFS=$' \t\n'  # callers may have set IFS to a tab
  for child in $(pgrep -P "$1" || true); do kill_tree "$child"; done
  kill -KILL "$1" 2>/dev/null || true
}
# A server that stopped answering: killed with its children, then stopped as any server is
# (its FIFO ends closed, so the next check starts a new one).
kill_server() {
  kill_tree "$server_pid"
  stop_server
}
trap 'stop_server; rm -rf "$WORK"' EXIT
start_server() {
  rm -rf "$WORK/.checker"
  mkdir "$WORK/.checker"
  mkfifo "$WORK/.checker/jobs" "$WORK/.checker/done"
  # Opened read-write so that neither open waits for the server (which may fail to start).
  exec {jobs_fd}<>"$WORK/.checker/jobs" {done_fd}<>"$WORK/.checker/done"
  # When the server ends, for whatever reason, a last line says so: a check waiting for its
  # status never hangs. The server must not inherit this shell's ends of the FIFOs (the jobs
  # FIFO would then never reach EOF).
  (
    exec {jobs_fd}>&- {done_fd}<&-
    "$REFENV" serve "$IN/.checker" || true
    echo "checker-server-exited" >"$WORK/.checker/done"
  ) &
  server_pid=$!
}
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
  [[ -f "$script" ]] || { fail "$label: no checker $script"; return; }
  local IFS=$'\t' status attempt
  # A check that gives no answer in CKCONV_CHECK_TIMEOUT seconds hung inside the reference
  # tools (seen: a rank of a multirank DCP write forked from PyTorch's threads, stuck on a
  # lock): the server is killed and the check runs once more on a new one, saying so.
  for attempt in 1 2; do
    [[ -n "$server_pid" ]] || start_server
    printf '%s\n' "$(basename "$script")${IFS}$*" >&"$jobs_fd"
    if read -r -t "${CKCONV_CHECK_TIMEOUT:-180}" status <&"$done_fd"; then break; fi
    status="no answer in ${CKCONV_CHECK_TIMEOUT:-180} s"
    echo "NOTE $label: $status (a hang in the reference tools); killing the checker server" >&2
    kill_server
  done
  # The server died: this check fails and the next one starts a new server.
  [[ "$status" != checker-server-exited ]] || stop_server
  if [[ "$status" == 0 ]]; then pass "$label"; else fail "$label (exit $status)"; fi
}
fixture_field() { sed -n "s/^ *\"$2\": *\"\([^\"]*\)\".*/\1/p" "$FIXTURES/adapters/$1/flavor.json" | head -n1; }
fixture_args() {
  echo "-m $(fixture_field "$1" family) -f $(fixture_field "$1" base_flavor) --set-from $FIXTURES/adapters/$1/flavor.json"
}
finish() {
  echo "$((checks - failures)) passed, $failures failed"
  [[ "$failures" == 0 ]]
}
