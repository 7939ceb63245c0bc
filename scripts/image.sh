#!/usr/bin/env bash
# Builds devicegate's container image without a Docker daemon
# (tools/imagebuild, go-containerregistry pinned in tools/go.mod), proves the
# build is reproducible, and inspects what a platform will run.
#
#   bash scripts/image.sh [OUT]     OUT defaults to dist/image (an OCI layout)
#
# Prints the digest and size. The deploy workflow pushes OUT with crane;
# scripts/e2e.sh runs the binary extracted from it through a whole flow.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-dist/image}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "image: FAIL: $*" >&2; exit 1; }

bin="$work/imagebuild"
(cd tools && go build -o "$bin" ./imagebuild)

# The binary is built with the same flags twice over (-trimpath, no build id,
# no VCS stamp) so that the image depends on the source alone.
build_binary() {
  CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -tags container -trimpath -buildvcs=false \
    -ldflags="-s -w -buildid=" -o "$1" ./api
}

echo "== build the image twice from two builds of the binary: same digest"
build_binary "$work/a"
build_binary "$work/b"
rm -rf "$out" "$work/second"
first=$("$bin" -binary "$work/a" -out "$out" ${IMAGE_SOURCE:+-source "$IMAGE_SOURCE"} ${IMAGE_REVISION:+-revision "$IMAGE_REVISION"} | cut -d' ' -f2)
second=$("$bin" -binary "$work/b" -out "$work/second" ${IMAGE_SOURCE:+-source "$IMAGE_SOURCE"} ${IMAGE_REVISION:+-revision "$IMAGE_REVISION"} | cut -d' ' -f2)
[ "$first" = "$second" ] || fail "two builds gave $first and $second"
echo "   $first"

echo "== inspect: entrypoint, non-root user, port from PORT, contents, size"
"$bin" -inspect "$out" >"$work/summary.json"
python3 - "$work/summary.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
problems = []
def want(cond, msg):
    if not cond:
        problems.append(msg)
want(s["entrypoint"] == ["/devicegate"], f"entrypoint {s['entrypoint']}")
user = s["user"].split(":")
want(user[0] not in ("", "0", "root") and len(user) == 2 and user[1] != "0", f"user {s['user']!r} is root or has no group")
env = dict(e.split("=", 1) for e in s["env"])
want(env.get("PORT") == "8080", f"PORT {env.get('PORT')!r}")
want(s["exposed_ports"] == ["8080/tcp"], f"exposed ports {s['exposed_ports']}")
want((s["os"], s["architecture"]) == ("linux", "amd64"), f"platform {s['os']}/{s['architecture']}")
want(s["files"] == ["etc", "etc/passwd", "etc/group", "tmp", "devicegate"], f"files {s['files']}")
want(s["binary_mode"] == "0555" and s["binary_owner"] == 0, f"binary mode {s['binary_mode']} owner {s['binary_owner']}: the running user must not be able to change it")
limit = 12 * 1024 * 1024
want(s["compressed_bytes"] < limit, f"image is {s['compressed_bytes']} bytes compressed, over {limit}")
for k in env:
    want(not any(w in k for w in ("SECRET", "KEY", "PASSWORD", "TOKEN")), f"the image sets {k}: secrets come from the platform")
if problems:
    print("\n".join("   " + p for p in problems))
    sys.exit(1)
print(f"   entrypoint {s['entrypoint'][0]}, user {s['user']}, PORT={env['PORT']}, {s['layers']} layer, "
      f"{s['compressed_bytes'] / 1024 / 1024:.1f} MB compressed")
PY
echo "image: $out $first"
