# Sourced by demo.sh and test.sh: pick the Python to install socialark into.
# Debian/Ubuntu's system Python refuses `pip install` (PEP 668, "externally managed"); there we
# use a project virtualenv in .venv instead, and put it first on PATH for the rest of the script.
PY=python3
if "$PY" -c 'import os, sys, sysconfig; sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")) else 1)'; then
  if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv 2>/dev/null || {
      echo "== installing python3-venv"; ${SUDO:-} apt-get update -qq
      DEBIAN_FRONTEND=noninteractive ${SUDO:-} apt-get install -y -qq python3-venv >/dev/null
      "$PY" -m venv .venv
    }
  fi
  export PATH="$PWD/.venv/bin:$PATH"
  PY="$PWD/.venv/bin/python"
fi
