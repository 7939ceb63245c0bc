#!/usr/bin/env bash
# End-to-end proof with real components: two independently written OpenID
# providers upstream (the zitadel example OP, and oidc-provider from npm),
# headless Chromium as the person (axe-core checks every page for WCAG 2.1
# AA), and three device clients (golang.org/x/oauth2, github.com/cli/oauth,
# openid-client), with devicegate's real binary on the memory and the
# Cosmos store, and three instances of it on one Cosmos container behind a
# round-robin front (TestScaleOut); and the device programs of
# docs/DEVICES.md (Go, Python with Authlib, Node with openid-client, bash
# with curl and jq) against -demo.
# Installs what it needs (Debian chromium, python3-authlib, python3-requests,
# jq and curl, npm packages from the lockfiles, Go modules); loopback only;
# stops what it starts.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ]; then
  echo "== installing Chromium (Debian package)"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null
  else
    sudo apt-get update -qq && sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
  fi
fi

if ! dpkg -s fonts-noto-cjk >/dev/null 2>&1; then
  # The Japanese pages need CJK glyphs, or the screenshots show boxes.
  echo "== installing Noto CJK fonts (Debian package) for the Japanese pages"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq --no-install-recommends fonts-noto-cjk >/dev/null
  else
    sudo apt-get update -qq && sudo apt-get install -y -qq --no-install-recommends fonts-noto-cjk >/dev/null
  fi
fi

# docs/examples: Debian's python3 with Authlib, and jq and curl for the
# shell one (the test runs /usr/bin/python3, where apt-get puts them).
if ! /usr/bin/python3 -c 'import authlib, requests' 2>/dev/null || ! command -v jq >/dev/null || ! command -v curl >/dev/null; then
  echo "== installing python3-authlib, python3-requests, jq, curl (Debian packages) for docs/examples"
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get install -y -qq --no-install-recommends python3 python3-authlib python3-requests jq curl >/dev/null 2>&1 ||
    { $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends python3 python3-authlib python3-requests jq curl >/dev/null; }
fi

echo "== npm packages: openid-client, jsQR, axe-core, oidc-provider (lockfile)"
(cd e2e/node && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
echo "== npm packages: docs/examples/node (openid-client, lockfile)"
(cd docs/examples/node && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)

started=""
if [ -z "${DEVICEGATE_TEST_COSMOS:-}" ]; then
  eval "$(bash scripts/cosmos-server.sh start)"
  export DEVICEGATE_TEST_COSMOS
  started=1
fi
cleanup() { [ -n "$started" ] && bash scripts/cosmos-server.sh stop; }
trap cleanup EXIT

echo "== container image: built without Docker, inspected; its binary runs a whole flow below"
image_dir=$(mktemp -d)
chmod 0755 "$image_dir" # the flow runs the binary as the image's unprivileged user
trap 'cleanup; rm -rf "$image_dir"' EXIT
bash scripts/image.sh "$image_dir/image"
(cd tools && go run ./imagebuild -extract "$image_dir/image" -o "$image_dir/devicegate")
export DEVICEGATE_E2E_IMAGE_BINARY="$image_dir/devicegate"

echo "== go vet (e2e module)"
(cd e2e && go vet ./...)

echo "== end-to-end suite (screenshots in e2e/out/)"
rm -rf e2e/out
(cd e2e && go test -count=1 -timeout 30m -v ./... 2>&1) | grep -v '^=== \(RUN\|PAUSE\|CONT\)'
