#!/usr/bin/env bash
# Proves the release build reproducible and stamped (.ci/run):
#
#   bash scripts/release-check.sh                      build twice, compare, verify
#   bash scripts/release-check.sh --verify DIR VERSION  verify one build (release workflow)
#
# Twice: scripts/release.sh into two folders; their SHA256SUMS must be
# identical (archives, SBOMs and the container image digests all listed).
# Verify: every file matches SHA256SUMS; every platform has its three
# archives, each holding the binary, LICENSE and README.md, with an SBOM
# naming the version; every Linux binary prints "NAME VERSION PLATFORM
# GOVERSION" for -version: amd64 here, arm64 under qemu-aarch64, armv7
# under qemu-arm as a Cortex-A7 and armv6 as the Pi Zero's ARM1176 (Debian
# qemu-user, installed when missing); the macOS and Windows binaries carry
# their platform in their build information (`go version -m`) and the
# version string (with -trimpath, Go records no -ldflags there).
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "release-check: FAIL: $*" >&2; exit 1; }

if ! command -v qemu-aarch64 >/dev/null || ! command -v qemu-arm >/dev/null; then
  echo "== installing qemu-user (Debian package) to run the arm64, armv7 and armv6 binaries"
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get install -y -qq --no-install-recommends qemu-user >/dev/null 2>&1 ||
    { $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends qemu-user >/dev/null; }
fi

platforms=(linux_amd64 linux_arm64 linux_armv7 linux_armv6 darwin_amd64 darwin_arm64 windows_amd64)
binaries=(devicegate devicegate-login devicegate-check)

verify() {
  local dir=$1 version=$2 work
  work=$(mktemp -d)
  # shellcheck disable=SC2064 # expand now: the trap outlives this function's locals
  trap "rm -rf '$work'" RETURN
  (cd "$dir" && sha256sum --quiet -c SHA256SUMS) || fail "$dir: files do not match SHA256SUMS"
  nfiles=$(( ${#platforms[@]} * ${#binaries[@]} * 2 + 1 ))
  [ "$(wc -l <"$dir/SHA256SUMS")" = "$nfiles" ] || fail "$dir/SHA256SUMS lists $(wc -l <"$dir/SHA256SUMS") files, want $nfiles"
  grep -q '^multi-platform sha256:' "$dir/devicegate_${version}_image_digests.txt" || fail "no multi-platform image digest"
  for p in "${platforms[@]}"; do
    IFS=_ read -r goos arch <<<"$p"
    goarch=$arch goarm=""
    case "$arch" in armv6 | armv7) goarch=arm goarm=${arch#armv} ;; esac
    for b in "${binaries[@]}"; do
      base="${b}_${version}_${p}"
      exe=""
      if [ "$goos" = windows ]; then
        exe=.exe
        python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$dir/$base.zip" "$work"
      else
        tar -xzf "$dir/$base.tar.gz" -C "$work"
      fi
      held=$(find "$work/$base" -mindepth 1 -printf '%f\n' | LC_ALL=C sort | tr '\n' ' ')
      [ "$held" = "LICENSE README.md $b$exe " ] || fail "$base holds: $held"
      bin="$work/$base/$b$exe"
      python3 - "$dir/$base.cdx.json" "$version" "$b" <<'PY' || fail "$base.cdx.json"
import json, sys
bom = json.load(open(sys.argv[1]))
c = bom["metadata"]["component"]
props = {p["name"]: p["value"] for p in bom["metadata"].get("properties", [])}
ok = bom["bomFormat"] == "CycloneDX" and c["version"] == sys.argv[2] and props.get("cdx:gomod:binary:name", "").removesuffix(".exe") == sys.argv[3]
sys.exit(0 if ok else f"{sys.argv[1]}: not a CycloneDX SBOM of {sys.argv[3]} {sys.argv[2]}")
PY
      info=$(go version -m "$bin")
      for want in "GOOS=$goos" "GOARCH=$goarch" "CGO_ENABLED=0" "-trimpath=true" ${goarm:+"GOARM=$goarm"}; do
        grep -qF -- "$want" <<<"$info" || fail "$base: build information lacks $want"
      done
      grep -qaF -- "$version" "$bin" || fail "$base: the version string is not in the binary"
      run=()
      case "$p" in
        linux_amd64) run=("$bin") ;;
        linux_arm64) run=(qemu-aarch64 "$bin") ;;
        linux_armv7) run=(qemu-arm -cpu cortex-a7 "$bin") ;;
        linux_armv6) run=(qemu-arm -cpu arm1176 "$bin") ;; # the Pi Zero's and Pi 1's core
      esac
      if [ ${#run[@]} -gt 0 ]; then
        got=$("${run[@]}" -version) || fail "$base: -version exited $?"
        [ "$got" = "$b $version $goos/$arch $(go env GOVERSION)" ] || fail "$base -version printed '$got'"
        echo "   $p: $got"
      fi
      rm -rf "${work:?}/$base"
    done
  done
  echo "release-check: $dir verified ($nfiles files; every binary stamped $version)"
}

if [ "${1:-}" = --verify ]; then
  verify "$2" "$3"
  exit 0
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
version=$(git describe --tags --match 'v*' --always --dirty 2>/dev/null || echo devel)
start=$SECONDS
bash scripts/release.sh -v "$version" "$out/a"
first=$((SECONDS - start))
bash scripts/release.sh -v "$version" "$out/b" >/dev/null
second=$((SECONDS - start - first))
if ! diff "$out/a/SHA256SUMS" "$out/b/SHA256SUMS"; then
  fail "two builds of the same source differ (lines above)"
fi
echo "release-check: two builds, identical SHA256SUMS ($(wc -l <"$out/a/SHA256SUMS") files; ${first}s and ${second}s)"
verify "$out/a" "$version"
(cd tools && go test -count=1 ./imagebuild)
