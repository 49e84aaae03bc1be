#!/usr/bin/env bash
# Reference environment for interop tests: a cached Debian sid chroot holding the real PyTorch,
# safetensors, transformers and numpy (Debian's packages), so tests can check ckconv's output
# against the libraries it must interoperate with. The host (Debian 12) is too old for them.
#
# Usage:
#   scripts/refenv.sh setup             create the chroot if missing (progress on stderr)
#   scripts/refenv.sh status            exit 0 if the chroot is ready, 1 otherwise
#   scripts/refenv.sh root              print the chroot root path
#   scripts/refenv.sh run SCRIPT [ARGS] run SCRIPT with the chroot's python3 (exit code propagated)
#   scripts/refenv.sh serve DIR         run tests/interop/checker_server.py on the FIFOs in DIR
#                                       (a chroot path): many checks, one `import torch`
#   scripts/refenv.sh shell             interactive bash inside the chroot
#
# Data exchange: no bind mounts. Tests put their files under "$(refenv.sh root)/tmp/..." and pass
# chroot-relative paths ("/tmp/...") to the checkers.
#
# Environment:
#   CKCONV_REFENV_DIR      chroot location (default /var/cache/ckconv/refenv-sid; outside the repo
#                          because it is ~1.6 GB and shared by every checkout on the machine)
#   CKCONV_DEBIAN_MIRROR   Debian mirror URI, if set; otherwise the first Debian archive URI of the
#                          host's apt sources (no mirror host name is written in the repository)
#
# Exit codes: setup/status/run errors of this script are 2 (status: 1 = not ready); run otherwise
# returns the script's own exit code.
set -euo pipefail

# sid carries PyTorch 2.14 (the main reference); trixie carries PyTorch 2.6, the oldest
# version whose DCP/torch.save files ckconv promises to read and write.
readonly REFENV_SUITE="${CKCONV_REFENV_SUITE:-sid}"
readonly REFENV_ROOT="${CKCONV_REFENV_DIR:-/var/cache/ckconv/refenv-$REFENV_SUITE}"
# The marker is written last, inside the temporary tree, before the rename that publishes it:
# a tree without it (or with an older recipe) is never used.
readonly READY_MARKER=".ckconv-refenv-ready"
# Bump when the package set or the build steps change: existing chroots are then rebuilt.
readonly REFENV_RECIPE="1"
# transformers only needs huggingface-hub besides torch/safetensors/numpy to import and to load
# local weights; tokenizers are not needed for weight loading. Recommends are never installed.
if [[ "$REFENV_SUITE" == sid ]]; then
  readonly REFENV_PACKAGES=(python3-torch python3-safetensors python3-transformers python3-numpy
                            python3-huggingface-hub)
else  # older suites serve the DCP/torch.save checks only
  readonly REFENV_PACKAGES=(python3-torch python3-safetensors python3-numpy)
fi
readonly CHROOT_INTEROP_DIR="/opt/ckconv-interop"

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR
readonly INTEROP_SOURCE_DIR="$SCRIPT_DIR/../tests/interop"

log() { printf 'refenv: %s\n' "$*" >&2; }

die() {
  printf 'refenv: ERROR: %s\n' "$*" >&2
  exit 2
}

# Setup failures must be impossible to miss in a test log.
die_setup() {
  printf '\n********************************************************************************\n' >&2
  printf 'refenv: ERROR: %s\n' "$*" >&2
  printf 'refenv: the reference environment %s could NOT be created.\n' "$REFENV_ROOT" >&2
  printf '********************************************************************************\n\n' >&2
  exit 2
}

is_ready() {
  [[ -f "$REFENV_ROOT/$READY_MARKER" ]] &&
    grep -qx "recipe=$REFENV_RECIPE" "$REFENV_ROOT/$READY_MARKER"
}

# Prints the Debian archive URI of the host's apt configuration (the main archive, not
# debian-security), so no mirror host name is ever written into the repository.
host_debian_mirror() {
  local file
  {
    # deb822 files: one stanza per paragraph; skip stanzas with "Enabled: no".
    for file in /etc/apt/sources.list.d/*.sources; do
      [[ -r "$file" ]] || continue
      awk 'BEGIN { RS = ""; FS = "\n" }
           {
             enabled = 1; uris = ""
             for (i = 1; i <= NF; i++) {
               if ($i ~ /^Enabled:[ \t]*no/) enabled = 0
               if ($i ~ /^URIs:/) { uris = $i; sub(/^URIs:[ \t]*/, "", uris) }
             }
             if (enabled && uris != "") { n = split(uris, u, /[ \t]+/); for (j = 1; j <= n; j++) print u[j] }
           }' "$file"
    done
    # One-line format: "deb [options] URI suite components".
    for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
      [[ -r "$file" ]] || continue
      sed -n -E 's/\[[^]]*\]//; s/^[[:space:]]*deb[[:space:]]+([^[:space:]]+).*/\1/p' "$file"
    done
  } | grep -E '^(https?|file)://.*/debian/?$' | head -n 1 | sed 's:/*$::'
}

debian_mirror() {
  if [[ -n "${CKCONV_DEBIAN_MIRROR:-}" ]]; then
    printf '%s\n' "$CKCONV_DEBIAN_MIRROR"
    return
  fi
  local mirror
  mirror="$(host_debian_mirror || true)"
  [[ -n "$mirror" ]] ||
    die_setup "no Debian mirror found in /etc/apt/sources.list{,.d/*} and CKCONV_DEBIAN_MIRROR is unset"
  printf '%s\n' "$mirror"
}

# Removes a (possibly half-made) tree. Mounts left behind by a killed debootstrap (/proc, /sys)
# are unmounted first, and --one-file-system guarantees rm never descends into one anyway.
remove_tree() {
  local tree="$1" mount_point
  [[ -e "$tree" ]] || return 0
  while read -r mount_point; do
    umount -l "$mount_point" 2>/dev/null || true
  done < <(awk -v t="$tree" 'index($2, t "/") == 1 { print $2 }' /proc/mounts | sort -r)
  rm -rf --one-file-system "$tree"
}

# Runs a command inside the chroot with a clean, offline environment (coreutils chroot changes
# directory to the new root). Without /proc, libcpuinfo cannot read /proc/cpuinfo, so torch falls
# back to its slowest "DEFAULT" kernels and UCX prints an error on stdout at import. So /proc is
# mounted when possible, inside a private mount namespace: the mount is invisible to the host and
# vanishes with the process, so nothing is left mounted in the cached tree (no bind mounts at all).
# Where namespaces or mounts are not permitted, the command still runs, only without /proc.
in_chroot() {
  local root="$1"
  shift
  local clean_env=(env -i HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}"
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
    DEBIAN_FRONTEND=noninteractive
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
    OMP_NUM_THREADS=2 UCX_LOG_LEVEL=fatal PYTHONDONTWRITEBYTECODE=1)
  if unshare --mount --propagation private true 2>/dev/null; then
    # shellcheck disable=SC2016  # $1 and $@ belong to the inner shell
    "${clean_env[@]}" unshare --mount --propagation private -- /bin/sh -c '
      root="$1"; shift
      mount -t proc proc "$root/proc" 2>/dev/null || true
      exec /usr/sbin/chroot "$root" "$@"' refenv-chroot "$root" "$@"
  else
    "${clean_env[@]}" /usr/sbin/chroot "$root" "$@"
  fi
}

build_tree() {
  local tree="$1" mirror="$2"
  local apt_options=(-o Acquire::Check-Valid-Until=false -o Acquire::Retries=3 -y -q)

  # debootstrap verifies the Release signature with gpgv only; it never checks Valid-Until, so
  # a frozen mirror snapshot works without an equivalent option.
  log "debootstrap --variant=minbase $REFENV_SUITE from $mirror (a few minutes)"
  if ! debootstrap --variant=minbase "$REFENV_SUITE" "$tree" "$mirror" >"$tree.debootstrap.log" 2>&1; then
    tail -n 20 "$tree.debootstrap.log" >&2 || true
    [[ -f "$tree/debootstrap/debootstrap.log" ]] && tail -n 20 "$tree/debootstrap/debootstrap.log" >&2
    die_setup "debootstrap failed (full log: $tree.debootstrap.log)"
  fi
  rm -f "$tree.debootstrap.log"

  # Size: documentation, man pages and translations are useless in a test chroot.
  cat >"$tree/etc/dpkg/dpkg.cfg.d/01-ckconv-nodoc" <<'EOF'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-exclude=/usr/share/lintian/*
EOF
  # The mirror may be a frozen snapshot whose Release file has expired.
  cat >"$tree/etc/apt/apt.conf.d/99-ckconv" <<'EOF'
Acquire::Check-Valid-Until "false";
APT::Install-Recommends "false";
APT::Install-Suggests "false";
EOF
  # Nothing in the chroot may start a service.
  printf '#!/bin/sh\nexit 101\n' >"$tree/usr/sbin/policy-rc.d"
  chmod 755 "$tree/usr/sbin/policy-rc.d"

  log "apt-get install ${REFENV_PACKAGES[*]}"
  in_chroot "$tree" apt-get "${apt_options[@]}" update >&2 ||
    die_setup "apt-get update failed inside the chroot"
  in_chroot "$tree" apt-get "${apt_options[@]}" install --no-install-recommends "${REFENV_PACKAGES[@]}" >&2 ||
    die_setup "apt-get install failed inside the chroot"
  in_chroot "$tree" apt-get clean
  rm -rf "$tree"/var/lib/apt/lists/* "$tree"/var/cache/apt/*.bin

  # Prove the environment works exactly as `run` will use it, before it is marked ready.
  log "smoke test: importing ${REFENV_PACKAGES[*]}"
  local versions
  versions="$(in_chroot "$tree" /usr/bin/python3 -c '
import importlib, sys
print("python=" + sys.version.split()[0])
for name in sys.argv[1:]:
    module = importlib.import_module(name)
    print(name + "=" + module.__version__)
' $(printf '%s\n' "${REFENV_PACKAGES[@]}" | sed -n 's/^python3-//p' | tr - _))" ||
    die_setup "the libraries installed but do not import inside the chroot"

  { printf 'recipe=%s\n' "$REFENV_RECIPE"; printf '%s\n' "$versions"; date -u +built=%Y-%m-%dT%H:%M:%SZ; } \
    >"$tree/$READY_MARKER"
}

cmd_setup() {
  is_ready && { log "ready: $REFENV_ROOT"; return 0; }
  [[ "$(id -u)" == 0 ]] || die_setup "setup needs root (debootstrap, chroot)"
  command -v debootstrap >/dev/null || die_setup "debootstrap is not installed (apt-get install debootstrap)"

  local parent
  parent="$(dirname "$REFENV_ROOT")"
  mkdir -p "$parent"
  # One builder at a time; a concurrent caller waits and then finds the tree ready.
  exec 9>"$REFENV_ROOT.lock"
  flock 9
  is_ready && { log "ready: $REFENV_ROOT"; return 0; }

  local stale
  for stale in "$REFENV_ROOT".tmp.* "$REFENV_ROOT".old.*; do
    [[ -d "$stale" ]] && { log "removing leftover $stale"; remove_tree "$stale"; }
  done
  rm -f "$REFENV_ROOT".tmp.*.debootstrap.log

  local mirror tree start_seconds
  mirror="$(debian_mirror)"
  tree="$(mktemp -d "$REFENV_ROOT.tmp.XXXXXX")"
  chmod 755 "$tree"
  # A failed build removes its tree now; a killed one is removed by the next setup (above).
  UNPUBLISHED_TREE="$tree"
  trap 'remove_tree "$UNPUBLISHED_TREE"' EXIT
  start_seconds=$SECONDS
  build_tree "$tree" "$mirror"

  # Publish: an incomplete or outdated tree at the final path is moved aside first, so the final
  # path only ever holds a complete tree (the rename is atomic within one filesystem).
  if [[ -e "$REFENV_ROOT" ]]; then
    local old="$REFENV_ROOT.old.$$"
    mv "$REFENV_ROOT" "$old"
    mv "$tree" "$REFENV_ROOT"
    remove_tree "$old"
  else
    mv "$tree" "$REFENV_ROOT"
  fi
  trap - EXIT
  log "ready in $((SECONDS - start_seconds)) s: $REFENV_ROOT ($(du -sh --one-file-system "$REFENV_ROOT" | cut -f1))"
  sed 's/^/refenv:   /' "$REFENV_ROOT/$READY_MARKER" >&2
}

require_ready() {
  is_ready || die "not set up; run: scripts/refenv.sh setup"
}

# Copies tests/interop (a few small files) and SCRIPT into the chroot. Each file is renamed into
# place so that concurrent runs never read a half-written copy.
install_interop_files() {
  local script="$1" destination="$REFENV_ROOT$CHROOT_INTEROP_DIR" file temporary
  mkdir -p "$destination"
  for file in "$INTEROP_SOURCE_DIR"/*.py "$script"; do
    [[ -f "$file" ]] || continue
    temporary="$(mktemp "$destination/.copy.XXXXXX")"
    cp "$file" "$temporary"
    chmod 644 "$temporary"
    mv -f "$temporary" "$destination/$(basename "$file")"
  done
}

cmd_run() {
  [[ $# -ge 1 ]] || die "usage: refenv.sh run SCRIPT [ARGS...]"
  local script="$1"
  shift
  [[ -f "$script" ]] || die "no such script: $script"
  require_ready
  install_interop_files "$script"
  local status=0
  in_chroot "$REFENV_ROOT" /usr/bin/python3 "$CHROOT_INTEROP_DIR/$(basename "$script")" "$@" || status=$?
  return "$status"
}

cmd_serve() {
  [[ $# -eq 1 ]] || die "usage: refenv.sh serve DIR"
  require_ready
  install_interop_files /dev/null
  in_chroot "$REFENV_ROOT" /usr/bin/python3 "$CHROOT_INTEROP_DIR/checker_server.py" "$1"
}

cmd_shell() {
  require_ready
  install_interop_files /dev/null
  in_chroot "$REFENV_ROOT" /bin/bash -l
}

main() {
  local command="${1:-}"
  [[ $# -gt 0 ]] && shift
  case "$command" in
    setup) cmd_setup ;;
    status) is_ready ;;
    root) printf '%s\n' "$REFENV_ROOT" ;;
    run) cmd_run "$@" ;;
    serve) cmd_serve "$@" ;;
    shell) cmd_shell ;;
    *)
      sed -n '/^# Usage:/,/^#$/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
      exit 64
      ;;
  esac
}

main "$@"
