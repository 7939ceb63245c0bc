#!/usr/bin/env bash
# Lints the GitHub Actions workflows with actionlint, pinned in tools/go.mod.
set -euo pipefail
cd "$(dirname "$0")/.."
# actionlint checks the run: scripts with shellcheck when it is installed;
# CI installs it (Debian package) so that check always runs there.
if ! command -v shellcheck >/dev/null && [ -n "${CI:-}" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get install -y -qq --no-install-recommends shellcheck >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq --no-install-recommends shellcheck; }
fi
bin="${TMPDIR:-/tmp}/devicegate-tools"
mkdir -p "$bin"
(cd tools && go build -o "$bin/actionlint" github.com/rhysd/actionlint/cmd/actionlint)
"$bin/actionlint" -no-color .github/workflows/*.yml
echo "actionlint: workflows clean"
