#!/usr/bin/env bash
# Runs every test of devicegate: `bash scripts/test.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
go test -race -count=1 ./...
