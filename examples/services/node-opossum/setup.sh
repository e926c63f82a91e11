#!/bin/sh
# Install this service's dependencies exactly as locked (idempotent, quiet).
set -eu
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --loglevel=error >/dev/null
