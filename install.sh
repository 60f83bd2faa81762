#!/usr/bin/env bash
# One-command install of sandboxed on a Linux host: Docker engine, .env, the three images, the stack.
# Safe to run again: what is already there and current is kept (a second run rebuilds nothing).
# Non-interactive when CI=true or stdin is not a terminal.
set -euo pipefail
cd "$(dirname "$0")"

started=$(date +%s)
current="start"
hint=""
step_started=$started
trap 'echo "error: install failed at step \"$current\".${hint:+ $hint}" >&2' ERR

step() {
  current=$1
  hint=${2:-}
  step_started=$(date +%s)
  echo "==> $current"
}
took() { echo "    ($(($(date +%s) - step_started)) s)"; }

compose() {
  if docker compose version >/dev/null 2>&1; then docker compose "$@"; else docker-compose "$@"; fi
}

step "Docker engine" "Install Docker Engine (https://docs.docker.com/engine/install/) and run this again."
bash scripts/ensure-docker.sh
took

step "configuration (.env)"
if [ -f .env ]; then
  echo "    keeping the existing .env"
else
  cp .env.example .env
  echo "    wrote .env from .env.example"
fi
# shellcheck source=scripts/load-env.sh
. scripts/load-env.sh
took

step "npm (stages the images' Node packages)" "Install Node.js and npm, or run as root on Debian/Ubuntu so apt can."
if ! command -v npm >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 || { echo "error: npm is missing" >&2; false; }
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
fi
echo "    npm $(npm --version)"
took

step "base image (Debian bookworm)" "Check that this host's apt mirror is reachable (images/base/build.sh)."
bash images/base/build.sh
took

step "sandbox image (Node 24, git, python3, agent CLIs)" "If TLS is intercepted here, set SANDBOXD_EXTRA_CA_CERTS in .env to your CA bundle."
bash images/sandbox/build.sh
took

step "daemon image"
bash images/sandboxd/build.sh
took

step "data directory"
mkdir -p "${SANDBOXED_DATA_DIR:-/var/lib/sandboxed}"
echo "    ${SANDBOXED_DATA_DIR:-/var/lib/sandboxed}"
took

step "start the stack" "See: docker compose logs sandboxd (or docker-compose logs sandboxd)."
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null
fi
compose up -d --remove-orphans sandboxd
took

api=${SANDBOXED_API_BIND:-127.0.0.1:9090}
step "wait for the API at http://$api/healthz" "See: docker compose logs sandboxd (or docker-compose logs sandboxd)."
for _ in $(seq 1 60); do
  if [ "$(curl -fsS "http://$api/healthz" 2>/dev/null)" = "ok" ]; then break; fi
  sleep 1
done
[ "$(curl -fsS "http://$api/healthz" 2>/dev/null)" = "ok" ]
took

port=${HTTP_PORT:-80}
suffix=$([ "$port" = 80 ] && echo "" || echo ":$port")
cat <<EOF

sandboxed is running ($(($(date +%s) - started)) s).

  API:      http://$api   (auth $([ "${SANDBOXD_API_AUTH_DISABLED:-true}" = true ] && echo "off: local use only" || echo "on"))
  Try:      curl -s -XPOST http://$api/sandbox -d '{"ports":[3000]}'
  Previews: http://s-<id>-<port>.preview.${PREVIEW_DOMAIN:-localhost}$suffix
  Docs:     README.md, AGENTS.md; stop everything with ./uninstall.sh
EOF
