#!/usr/bin/env bash
# Builds the minimal test image (sandboxed/test:latest) from the host's static busybox; no registry needed.
# Usage: images/test/build.sh [--force]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
image=${SANDBOXD_TEST_IMAGE:-sandboxed/test:latest}
if [ "${1:-}" != "--force" ] && docker image inspect "$image" >/dev/null 2>&1; then
  echo "test image $image: present"
  exit 0
fi
busybox=$(command -v busybox || true)
if [ -z "$busybox" ] || ldd "$busybox" >/dev/null 2>&1; then
  echo "error: a static busybox is needed to build $image; install it with: apt-get install -y busybox-static" >&2
  exit 1
fi
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp -a "$here/Dockerfile" "$here/rootfs" "$ctx/"
cp "$busybox" "$ctx/busybox"
echo "building test image $image"
# The engine here may predate BuildKit; the classic builder handles this Dockerfile everywhere.
if ! out=$(DOCKER_BUILDKIT=0 docker build -t "$image" "$ctx" 2>&1); then
  echo "$out" >&2
  echo "error: building $image failed (output above)" >&2
  exit 1
fi
echo "test image $image: built"
