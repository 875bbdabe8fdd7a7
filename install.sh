#!/usr/bin/env bash
# Install Memory Lab's Python packages. llama.cpp, the engine of the bundled offline model, compiles
# from source here (about 6 to 8 minutes on 2 cores), so its build progress is shown step by step.
# Usage: ./install.sh           the app's packages
#        ./install.sh --dev     the app's and the tests' packages
set -euo pipefail
cd "$(dirname "$0")"
requirements=requirements.txt
if [ "${1:-}" = "--dev" ]; then requirements=requirements-dev.txt; fi
export PIP_DISABLE_PIP_VERSION_CHECK=1

llama=$(grep -E '^llama-cpp-python==' requirements.txt)
wanted=${llama#*==}
have=$(python3 -c 'import importlib.metadata as m; print(m.version("llama-cpp-python"))' 2> /dev/null || true)
if [ "$have" != "$wanted" ]; then
  log=$(mktemp /tmp/memorylab-llama-build.XXXXXX.log)
  echo "Compiling llama.cpp for the offline model ($llama): about 6 to 8 minutes on 2 cores."
  echo "Each line below is one finished build step; the full log is $log"
  if ! python3 -m pip install -v "$llama" 2>&1 | tee "$log" \
      | sed -unE 's#^ *\[([0-9]+)/([0-9]+)\] .*[ /]([^ /:]+)$#  step \1 of \2: \3#p'; then
    tail -n 40 "$log"
    echo "The llama.cpp build failed (log above and in $log). It needs gcc, g++ and the Python headers." >&2
    exit 1
  fi
fi
echo "Installing the remaining packages from $requirements…"
python3 -m pip install -q -r "$requirements"
echo "Done."
