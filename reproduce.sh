#!/usr/bin/env bash
# Reproduce every notebook, or run the test suite.
#
#   ./reproduce.sh                       set up, then run every notebook in the full profile (outputs written in place)
#   ./reproduce.sh 00 01                 only these notebooks
#   ./reproduce.sh --profile quick 00    quick profile (outputs go to build/quick/, committed notebooks untouched)
#   ./reproduce.sh --list                list the notebooks
#   ./reproduce.sh setup                 only set up (venv, install, data)
#   ./reproduce.sh test                  set up, then pytest on kdlib + nbval on every notebook in the quick profile
#   ./reproduce.sh lab [--quick]         JupyterLab on working copies (build/lab); the committed notebooks stay untouched
#   ./reproduce.sh promote NN            replace notebook NN, its results and figures by its working copy's full run
#   ./reproduce.sh site                  render the committed notebooks and an index to build/site (static HTML)
set -euo pipefail
cd "$(dirname "$0")"

VENV=.venv
PY="$VENV/bin/python"

log() { printf '[reproduce] %s\n' "$*" >&2; }

setup() {
  local start=$SECONDS
  if [ ! -x "$PY" ]; then
    log "creating $VENV"
    python3 -m venv "$VENV"
  fi
  # Reinstall only when the package definition changed since the last install.
  if [ ! -f "$VENV/.kdlib-installed" ] || [ pyproject.toml -nt "$VENV/.kdlib-installed" ]; then
    log "installing kdlib and its dependencies (torch==2.13.0 CPU build)"
    "$PY" -m pip install --quiet --disable-pip-version-check -e '.[dev,ray]'
    touch "$VENV/.kdlib-installed"
  fi
  # Fashion-MNIST ships as a Debian package; install it when apt can (kdlib otherwise unpacks it with apt-get download).
  if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing the Debian package dataset-fashion-mnist"
    { apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 ||
      { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1; }; } ||
      log "apt-get install failed; kdlib will unpack the package with apt-get download instead"
  fi
  # Chromium (Debian's package) for the browser test of JupyterLab and the static site; skipped when not root.
  if ! command -v chromium >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing Debian's chromium for the browser test"
    { apt-get install -y -qq chromium >/dev/null 2>&1 ||
      { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1; }; } ||
      log "apt-get install chromium failed; the browser test will be skipped"
  fi
  log "preparing datasets and encoders (idempotent, verified by sha256)"
  "$PY" -m kdlib.data prepare >/dev/null
  log "set-up done in $((SECONDS - start)) s"
}

if [ "${1:-}" = "test" ]; then
  shift
  setup
  log "running pytest (kdlib unit tests + nbval over every notebook, quick profile)"
  exec "$PY" -m pytest tests notebooks --nbval-lax --nbval-current-env --nbval-cell-timeout=900 -p no:cacheprovider "$@"
fi

if [ "${1:-}" = "setup" ]; then
  setup
  exit 0
fi

if [ "${1:-}" = "lab" ] || [ "${1:-}" = "promote" ]; then
  command=$1
  shift
  setup
  [ "$command" = "lab" ] && exec "$PY" -m kdlib.lab serve "$@"
  exec "$PY" -m kdlib.lab promote "$@"
fi

if [ "${1:-}" = "site" ]; then
  shift
  setup
  exec "$PY" -m kdlib.site "$@"
fi

if [ "${1:-}" = "--list" ]; then
  exec python3 -c 'import pathlib; [print(p.name) for p in sorted(pathlib.Path("notebooks").glob("[0-9][0-9]_*.ipynb"))]'
fi

setup
exec "$PY" -m kdlib.runner "$@"
