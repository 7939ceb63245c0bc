#!/usr/bin/env bash
# Assembles what Azure Static Web Apps deploys:
#   dist/api   the Functions app: host.json, one folder per function, and
#              the Linux custom-handler binary "handler", and launch.sh,
#              which host.json runs with /bin/sh (see api/launch.sh)
#   dist/site  the static frontend and staticwebapp.config.json
# Usage: bash scripts/assemble.sh   (GOOS/GOARCH default to linux/amd64, as Azure runs)
set -euo pipefail
cd "$(dirname "$0")/.."

rm -rf dist
mkdir -p dist/api dist/site

cp host.json api/launch.sh dist/api/
for f in api/*/function.json; do
  name=$(basename "$(dirname "$f")")
  mkdir -p "dist/api/$name"
  cp "$f" "dist/api/$name/"
done
CGO_ENABLED=0 GOOS="${GOOS:-linux}" GOARCH="${GOARCH:-amd64}" \
  go build -trimpath -ldflags="-s -w" -o dist/api/handler ./api

cp -r frontend/assets frontend/*.html dist/site/
cp staticwebapp.config.json dist/site/

echo "assembled dist/api ($(du -sh dist/api | cut -f1)) and dist/site ($(du -sh dist/site | cut -f1))"
