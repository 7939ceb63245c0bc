#!/usr/bin/env bash
# Assembles what Azure deploys:
#   dist/api          the Functions app Static Web Apps runs: host.json, one
#                     folder per function, the Linux custom-handler binary
#                     "handler", and launch.sh, which host.json runs with
#                     /bin/sh (see api/launch.sh)
#   dist/site         the static frontend and staticwebapp.config.json
#   dist/functionapp  the Flex Consumption function app (hosting=functionApp):
#                     api/functionapp/host.json (request proxying, no route
#                     prefix), one catch-all function, launch.sh and the same
#                     handler, which serves pages, assets and API on one
#                     origin (docs/DEPLOY.md, "Functions host mode")
# Usage: bash scripts/assemble.sh   (GOOS/GOARCH default to linux/amd64, as Azure runs)
set -euo pipefail
cd "$(dirname "$0")/.."

rm -rf dist
mkdir -p dist/api dist/site dist/functionapp

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

cp api/functionapp/host.json api/launch.sh dist/functionapp/
for f in api/functionapp/*/function.json; do
  name=$(basename "$(dirname "$f")")
  mkdir -p "dist/functionapp/$name"
  cp "$f" "dist/functionapp/$name/"
done
cp dist/api/handler dist/functionapp/handler

echo "assembled dist/api ($(du -sh dist/api | cut -f1)), dist/site ($(du -sh dist/site | cut -f1)) and dist/functionapp ($(du -sh dist/functionapp | cut -f1))"
