#!/usr/bin/env bash
# Installs the real peers the tests need and the machine lacks: Debian
# packages (one apt-get call, starting no daemons) and the npm peers of
# interop/node. interop/run.sh calls it; .ci/run calls it before the tests
# of the broker modules too (redisbroker and natsbroker start
# redis-server and nats-server). Idempotent: a second run installs
# nothing. Run it as root for the apt part.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

log() { printf '[peers] %s\n' "$*" >&2; }

# ---------------------------------------------------------------------------
# Debian peers, as "package:command". The command is looked up with
# `command -v`; an entry with no command ("python3-websockets:") is checked
# with `dpkg -s`. Adding a peer is one word here, for example
#   squid:squid tinyproxy:tinyproxy nginx:nginx dante-server:danted
#   microsocks:microsocks python3-websockets:
# All missing packages are installed in one apt-get call.
# ---------------------------------------------------------------------------
DEB_PEERS=(
	chromium:chromium
	firefox-esr:firefox-esr
	python3-websockets:
	squid:squid
	tinyproxy:tinyproxy
	dante-server:danted
	microsocks:microsocks
	nginx:nginx
	redis-server:redis-server
	nats-server:nats-server
	nftables:nft
)

missing=()
for entry in "${DEB_PEERS[@]}"; do
	pkg="${entry%%:*}"
	cmd="${entry#*:}"
	if [[ -n "$cmd" ]]; then
		command -v "$cmd" >/dev/null 2>&1 && continue
	else
		dpkg -s "$pkg" >/dev/null 2>&1 && continue
	fi
	missing+=("$pkg")
done

if ((${#missing[@]} > 0)); then
	log "installing Debian packages: ${missing[*]}"
	if [[ $(id -u) -ne 0 ]]; then
		log "not root: cannot apt-get install ${missing[*]}"
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	# Installs must start no daemons (nginx on :80, squid on :3128, ...).
	if [[ ! -e /usr/sbin/policy-rc.d ]]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 0755 /usr/sbin/policy-rc.d
	fi
	aptlog="$(mktemp "${TMPDIR:-/tmp}/interop-apt.XXXXXX")"
	t0=$SECONDS
	ok=0
	for attempt in 1 2; do
		if apt-get update -qq >"$aptlog" 2>&1; then
			ok=1
			break
		fi
		log "apt-get update failed (attempt $attempt)"
		sleep 5
	done
	if ((ok == 0)) || ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$aptlog" 2>&1; then
		tail -n 50 "$aptlog" >&2
		log "apt-get failed; full log in $aptlog"
		exit 1
	fi
	rm -f "$aptlog"
	log "installed ${missing[*]} in $((SECONDS - t0))s"
	for entry in "${DEB_PEERS[@]}"; do
		cmd="${entry#*:}"
		if [[ -n "$cmd" ]] && ! command -v "$cmd" >/dev/null 2>&1; then
			log "package ${entry%%:*} installed, but $cmd is still not in PATH"
			exit 1
		fi
	done
else
	log "Debian peers present: ${DEB_PEERS[*]%%:*}"
fi

# ---------------------------------------------------------------------------
# Node peers (npm ws), from the committed lockfile.
# ---------------------------------------------------------------------------
command -v node >/dev/null 2>&1 || { log "node is missing"; exit 1; }
command -v npm >/dev/null 2>&1 || { log "npm is missing"; exit 1; }
t0=$SECONDS
(cd "$here/node" && npm ci --no-audit --no-fund --loglevel=error)
log "npm ci done in $((SECONDS - t0))s"
