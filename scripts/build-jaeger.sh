#!/usr/bin/env bash
# Builds the pinned Jaeger (tools/jaeger/go.mod: `tool github.com/jaegertracing/jaeger/cmd/jaeger`)
# into .tools/bin/jaeger for the tests that run against a real Jaeger. Rebuilt only when the pin
# changes: the stamp beside the binary holds the checksum of go.mod and go.sum.
# Without Go: an error under CI=true, otherwise one line and success (those tests then skip).
set -euo pipefail
cd "$(dirname "$0")/.."
module=tools/jaeger
out=.tools/bin/jaeger
stamp=.tools/bin/jaeger.stamp
# The release that the pinned module version v1.75.0 is (Jaeger tags v2 binaries on v1 module
# versions); a release build injects it, and the query service shows it in its index page.
release=v2.12.0

go_bin=$(command -v go || true)
if [ -z "$go_bin" ] && [ -x /usr/local/go/bin/go ]; then
  go_bin=/usr/local/go/bin/go
fi
if [ -z "$go_bin" ]; then
  if [ "${CI:-}" = "true" ]; then
    echo "build-jaeger: Go is not installed; the real-Jaeger tests need it (install Go 1.26+)" >&2
    exit 1
  fi
  echo "build-jaeger: Go not found, not building $out; the real-Jaeger tests will be skipped"
  exit 0
fi

want=$(cat "$module/go.mod" "$module/go.sum" | sha256sum | cut -d' ' -f1)
if [ -x "$out" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
mkdir -p "$(dirname "$out")"
echo "build-jaeger: building the pinned Jaeger into $out (first build: several minutes) ..."
version_pkg=github.com/jaegertracing/jaeger/internal/version
(
  cd "$module"
  "$go_bin" build -mod=readonly -trimpath \
    -ldflags "-s -w -X $version_pkg.latestVersion=$release" \
    -o "../../$out.tmp" github.com/jaegertracing/jaeger/cmd/jaeger
)
mv "$out.tmp" "$out"
echo "$want" > "$stamp"
