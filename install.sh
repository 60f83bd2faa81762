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

step "sandbox user 'sandboxed' (owns workspaces; sandboxes run as it)" "Run as root; useradd and groupadd (package passwd) are needed."
# A system user with no login shell and no home: a host account no one can log in as owns every workspace.
# 61000 is above useradd's UID_MAX (never a login user's) and below systemd's dynamic users; taken, it falls back to any free system id.
want_uid=${SANDBOXD_SANDBOX_UID:-61000}
want_gid=${SANDBOXD_SANDBOX_GID:-61000}
if ! getent group sandboxed >/dev/null; then
  if getent group "$want_gid" >/dev/null; then groupadd --system sandboxed; else groupadd --system --gid "$want_gid" sandboxed; fi
fi
if ! getent passwd sandboxed >/dev/null; then
  uid_opt=(--uid "$want_uid")
  if getent passwd "$want_uid" >/dev/null; then uid_opt=(); fi
  # (useradd warns that 61000 is above SYS_UID_MAX: intended, see above.)
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin --gid sandboxed "${uid_opt[@]}" sandboxed 2> >(grep -v 'SYS_UID_MAX' >&2)
fi
for pair in "SANDBOXD_SANDBOX_UID=$(id -u sandboxed)" "SANDBOXD_SANDBOX_GID=$(getent group sandboxed | cut -d: -f3)"; do
  if ! grep -q "^${pair%%=*}=" .env; then
    if [ -s .env ] && [ -n "$(tail -c 1 .env)" ]; then echo >> .env; fi
    echo "$pair" >> .env
    export "${pair?}"
    echo "    wrote $pair to .env"
  fi
done
echo "    sandboxes run as ${SANDBOXD_SANDBOX_UID}:${SANDBOXD_SANDBOX_GID} ($(getent passwd "$SANDBOXD_SANDBOX_UID" | cut -d: -f1 || echo 'no passwd entry'))"
took

step "data directory" "SANDBOXED_DATA_DIR must be a directory of this instance (SANDBOXD_INSTANCE) alone."
mkdir -p "${SANDBOXED_DATA_DIR:-/var/lib/sandboxed}"
# Root only: the database holds every sandbox's env (the daemon checks this at every boot too).
chmod 700 "${SANDBOXED_DATA_DIR:-/var/lib/sandboxed}"
echo "    ${SANDBOXED_DATA_DIR:-/var/lib/sandboxed}"
# The marker uninstall.sh --data looks for before it deletes anything (the daemon writes it too: src/store/marker.ts).
marker="${SANDBOXED_DATA_DIR:-/var/lib/sandboxed}/.sandboxed-data"
owner=$(sed -n 's/^instance=//p' "$marker" 2>/dev/null | head -n 1 || true)
if [ -z "$owner" ]; then
  (umask 077; printf 'instance=%s\nversion=1\n' "${SANDBOXD_INSTANCE:-default}" > "$marker")
elif [ "$owner" != "${SANDBOXD_INSTANCE:-default}" ]; then
  echo "error: $marker says this data directory belongs to instance '$owner', not '${SANDBOXD_INSTANCE:-default}'" >&2
  false
fi

# The daemon loop-mounts each workspace's disk image inside its container; the mounts reach the host's engine
# (which binds them into sandboxes) only through a shared mount (compose.yaml: propagation rshared), and
# Docker refuses that bind unless the host path is on a shared mount. systemd makes / shared; elsewhere the
# data dir is bound onto itself and made shared (again at every run of this script; see docs/operations.md).
step "data directory is a shared mount" "Run as root; mount(8) is needed."
data="$(realpath "${SANDBOXED_DATA_DIR:-/var/lib/sandboxed}")"
# The mount holding $data is the one with the longest mount point that is $data or a parent of it.
holder_shared=$(awk -v d="$data" '{
    mp = $5; gsub(/\\040/, " ", mp)
    if (mp == d || mp == "/" || index(d, mp "/") == 1) {
      shared = 0
      for (i = 7; i <= NF && $i != "-"; i++) if ($i ~ /^shared:/) shared = 1
      if (length(mp) >= best) { best = length(mp); answer = shared }
    }
  } END { print answer + 0 }' /proc/self/mountinfo)
if [ "$holder_shared" = 1 ]; then
  echo "    already shared"
else
  if ! mountpoint -q "$data"; then
    mount --bind "$data" "$data"
    # uninstall.sh unmounts only a bind this script made.
    : > "$data/.sandboxed-self-bind"
  fi
  mount --make-rshared "$data"
  echo "    bound $data onto itself and made it shared (repeat at boot on hosts without systemd: docs/operations.md)"
fi
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
