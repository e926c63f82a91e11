#!/bin/sh
# Create .venv in this folder and install the pinned requirements into it.
# Idempotent: an existing, working .venv is reused and pip skips what is installed.
# Needs Python 3.11 with the venv module (Debian: apt-get install python3-venv).
# Set PYTHON to use another interpreter than python3.
set -eu
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"

if ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
    rm -rf .venv
    if ! "$PYTHON" -m venv .venv; then
        echo "setup.sh: '$PYTHON -m venv' failed; on Debian install python3-venv" >&2
        exit 1
    fi
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
