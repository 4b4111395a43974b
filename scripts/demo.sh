#!/usr/bin/env bash
# Jupiter's main job on the embedded example, end to end, with the real CLI:
# ingest real scanner reports, prioritise, fix a host (sshd + PostgreSQL),
# prove the fix, roll it back, prove the rollback, verify the audit chain.
# Everything happens in a temporary copy; the repository is left untouched.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
J="$ROOT/.venv/bin/jupiter"
WORK=$(mktemp -d -t jupiter-demo-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export JUPITER_HOME="$WORK/workspace" JUPITER_ACTOR="demo@$(hostname)" COLUMNS="${COLUMNS:-160}"

step() { printf '\n\033[1;34m== %s\033[0m\n$ %s\n' "$1" "${*:2}"; }

cp -a examples/host "$WORK/host"
cp -a examples/webapp "$WORK/webapp"
sed -e "s#local:examples/webapp#local:$WORK/webapp#" -e "s#local:examples/host#local:$WORK/host#" \
  examples/assets.yaml > "$WORK/assets.yaml"

step "1. Create a workspace" jupiter init
"$J" init

step "2. Register the assets" jupiter assets import assets.yaml
"$J" assets import "$WORK/assets.yaml"
"$J" assets list

step "3. Ingest the reports the team's scanners already produce" \
  jupiter ingest --asset web-app-01 examples/reports/*.sarif examples/reports/*.json
"$J" ingest --asset web-app-01 examples/reports/*.sarif examples/reports/*.json

step "4. One prioritised, deduplicated list" jupiter findings list --limit 15
"$J" findings list --limit 15

step "5. Plan the sshd fix for the bastion, as a reviewer sees it" \
  jupiter fix '$HOST' --asset bastion-01 --only config.ssh --dry-run
"$J" fix "$WORK/host" --asset bastion-01 --only config.ssh --dry-run

step "6. Fix it for real: snapshot, validate (sshd -t), apply, verify by re-detection" \
  jupiter fix '$HOST' --asset bastion-01 --only config.ssh --yes
"$J" fix "$WORK/host" --asset bastion-01 --only config.ssh --yes
ssh_run=$("$J" runs list --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')

step "7. Fix the PostgreSQL configuration (TLS, scram, logging, pg_hba)" \
  jupiter fix '$HOST' --asset bastion-01 --only config.database --yes
"$J" fix "$WORK/host" --asset bastion-01 --only config.database --yes || true

step "8. Roll the sshd fix back, and prove it by hashes" jupiter rollback "$ssh_run" --yes
"$J" rollback "$ssh_run" --yes
if diff -r "$ROOT/examples/host/etc/ssh" "$WORK/host/etc/ssh" >/dev/null; then
  echo "sshd_config and its drop-ins are byte-for-byte what they were before the fix"
else
  echo "rollback left differences" >&2; exit 1
fi

step "9. Every step is in the tamper-evident audit trail" jupiter audit verify
"$J" runs list
"$J" audit verify
"$J" audit export --format cef | tail -n 3

printf '\n\033[1;32mDemo complete.\033[0m Workspace was %s (removed).\n' "$JUPITER_HOME"
