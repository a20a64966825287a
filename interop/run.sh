#!/usr/bin/env bash
# Interop harness: installs the real peers that the machine lacks (peers.sh),
# then vets and tests the interop module (package interop) against them.
# .ci/run calls it; it can be run by hand too (as root, for the apt part).
#
# Under CI=true the tests treat a missing peer as a failure, not a skip.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

log() { printf '[interop] %s\n' "$*" >&2; }

bash "$here/peers.sh"

# ---------------------------------------------------------------------------
# Go: vet and tests of the interop module.
# ---------------------------------------------------------------------------
cd "$here"
log "go vet ./... (interop)"
go vet ./...
log "go test -race ./... (interop)"
go test -race -count=1 -timeout 15m ./...
