#!/usr/bin/env bash
# Builds devicegate's release: devicegate (the server), devicegate-login and
# devicegate-check for every platform below, each in its own archive with an
# SBOM, a SHA256SUMS over them, and the container image for linux/amd64 and
# linux/arm64 (OCI layouts). The release workflow (.github/workflows/
# release.yml) publishes exactly this; .ci/run builds it twice and compares
# (scripts/release-check.sh).
#
#   bash scripts/release.sh [-v VERSION] [OUT]   OUT defaults to dist/release
#
# VERSION (default: `git describe --tags --always --dirty`) is stamped into
# every binary (-X github.com/devicegate/devicegate/internal/version.stamped,
# the one package all three print with -version). Everything
# depends only on the source, VERSION, SOURCE_DATE_EPOCH (default: the last
# commit's time) and the Go release: -trimpath, no VCS stamp, no build ID,
# CGO_ENABLED=0, archives with fixed times, owners and order
# (scripts/archive), SBOMs without serial number or timestamp.
set -euo pipefail
cd "$(dirname "$0")/.."

version=${VERSION:-}
if [ "${1:-}" = -v ]; then version=$2; shift 2; fi
out=${1:-dist/release}
if [ -z "$version" ]; then
  version=$(git describe --tags --match 'v*' --always --dirty 2>/dev/null || echo devel)
fi
case "$version" in
  *[!A-Za-z0-9._+-]* | "" | [!A-Za-z0-9]*) echo "release: version '$version' must be letters, digits and . _ + - (e.g. v1.2.3)" >&2; exit 2 ;;
esac
: "${SOURCE_DATE_EPOCH:=$(git log -1 --format=%ct 2>/dev/null || echo 0)}"
export SOURCE_DATE_EPOCH

# os/arch[/arm level]: 32-bit Raspberry Pi OS and the Pi Zero (ARM11) need
# armv6; armv7 suits other 32-bit ARM boards; Pi 3/4/5 with a 64-bit OS arm64.
platforms=(linux/amd64 linux/arm64 linux/arm/7 linux/arm/6 darwin/amd64 darwin/arm64 windows/amd64)
# name=package
binaries=(devicegate=./api devicegate-login=./cmd/devicegate-login devicegate-check=./cmd/devicegate-check)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rm -rf "$out"
mkdir -p "$out"

echo "release: $version (SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH, $(go env GOVERSION)) into $out"
# The SBOMs name cyclonedx-gomod with its own hash: built reproducibly too.
(cd tools && go build -trimpath -buildvcs=false -ldflags=-buildid= -o "$work/cyclonedx-gomod" github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod &&
  go build -o "$work/imagebuild" ./imagebuild)
go build -o "$work/archive" ./scripts/archive

# gobuild OS ARCH ARM OUTFILE PACKAGE [TAGS]: the one way every release
# binary is built. The environment is set in full so that a developer's
# GOFLAGS, GOAMD64 or GOEXPERIMENT cannot change the result.
gobuild() {
  env -u GOFLAGS -u GOEXPERIMENT CGO_ENABLED=0 GOOS="$1" GOARCH="$2" GOARM="${3:-}" GOAMD64=v1 GOARM64=v8.0 \
    go build -trimpath -buildvcs=false ${6:+-tags "$6"} -ldflags="-s -w -buildid= -X github.com/devicegate/devicegate/internal/version.stamped=$version" -o "$4" "$5"
}

for p in "${platforms[@]}"; do
  IFS=/ read -r goos goarch goarm <<<"$p"
  label="${goos}_${goarch}${goarm:+v$goarm}"
  [ "$goarch" = arm ] && label="${goos}_armv$goarm"
  exe=""; [ "$goos" = windows ] && exe=.exe
  for b in "${binaries[@]}"; do
    name=${b%%=*} pkg=${b#*=}
    base="${name}_${version}_${label}"
    mkdir -p "$work/$base"
    gobuild "$goos" "$goarch" "$goarm" "$work/$base/$name$exe" "$pkg"
    chmod 0755 "$work/$base/$name$exe"
    cp LICENSE README.md "$work/$base/"
    archive="$base.tar.gz"; [ "$goos" = windows ] && archive="$base.zip"
    "$work/archive" -o "$out/$archive" -prefix "$base/" "$work/$base/$name$exe" "$work/$base/LICENSE" "$work/$base/README.md"
    # The SBOM is read from the binary's own build information, so it
    # lists exactly the modules linked into what the archive holds.
    "$work/cyclonedx-gomod" bin -json -noserial -notimestamp -version "$version" \
      -output "$out/$base.cdx.json" "$work/$base/$name$exe" 2>"$work/sbom.log" ||
      { cat "$work/sbom.log" >&2; exit 1; }
    printf '   %-52s %s\n' "$archive" "$(du -k "$out/$archive" | cut -f1) KiB"
  done
done

# The container image: the server built with -tags container (embedded
# root certificates, as scripts/image.sh), one OCI layout per architecture
# (image/linux_amd64, image/linux_arm64; scripts/image.sh inspects the
# amd64 one in detail) and an index of both (image/multi), which the
# release workflow pushes under the version tag.
for arch in amd64 arm64; do
  gobuild linux "$arch" "" "$work/image-$arch" ./api container
  mkdir -p "$out/image"
  digest=$("$work/imagebuild" -arch "$arch" -binary "$work/image-$arch" -out "$out/image/linux_$arch" \
    ${IMAGE_SOURCE:+-source "$IMAGE_SOURCE"} ${IMAGE_REVISION:+-revision "$IMAGE_REVISION"} | cut -d' ' -f2)
  echo "linux/$arch $digest" >>"$out/devicegate_${version}_image_digests.txt"
  printf '   %-52s %s\n' "image linux/$arch" "$digest"
done
# One index naming both: pushed with `crane push --index`, it is the
# multi-platform image, and its digest is known (and attested) before.
digest=$("$work/imagebuild" -index "$out/image/multi" "$out/image/linux_amd64" "$out/image/linux_arm64" | cut -d' ' -f2)
echo "multi-platform $digest" >>"$out/devicegate_${version}_image_digests.txt"
printf '   %-52s %s\n' "image (multi-platform index)" "$digest"

"$work/archive" -sums "$out"
echo "release: $(grep -c . "$out/SHA256SUMS") files in $out/SHA256SUMS"
