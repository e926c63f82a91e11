#!/bin/sh
# Self-check of this service against the broker simulator: see smoke.py.
# Creates .venv first if it is missing (setup.sh).
set -eu
cd "$(dirname "$0")"
[ -x .venv/bin/python ] || sh setup.sh
exec .venv/bin/python smoke.py "$@"
