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
HEALTHD=""
export JUPITER_HOME="$WORK/workspace" JUPITER_ACTOR="demo@$(hostname)" COLUMNS="${COLUMNS:-160}"

# A local Splunk HEC and Jira receive the tracking updates (step 13).
"$ROOT/.venv/bin/python" scripts/fake_receivers.py "$WORK/received.json" > "$WORK/receivers.url" &
receivers=$!
trap 'kill "$receivers" 2>/dev/null || true; [ -n "$HEALTHD" ] && kill "$HEALTHD" 2>/dev/null; rm -rf "$WORK" 2>/dev/null || { sleep 1; rm -rf "$WORK"; }' EXIT
for _ in $(seq 100); do [ -s "$WORK/receivers.url" ] && break; sleep 0.1; done
fakes=$(cat "$WORK/receivers.url")
export JUPITER_SPLUNK_HEC_URL="$fakes" JUPITER_SPLUNK_HEC_TOKEN="demo-hec-token-0000" \
  JUPITER_JIRA_URL="$fakes" JUPITER_JIRA_USER="demo" JUPITER_JIRA_TOKEN="demo-jira-token" \
  JUPITER_JIRA_PROJECT="SEC"

step() { printf '\n\033[1;34m== %s\033[0m\n$ %s\n' "$1" "${*:2}"; }

cp -a examples/host "$WORK/host"
cp -a examples/webapp "$WORK/webapp"
cp -a examples/shop "$WORK/shop"
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

step "8. Hand the sshd fix to a change board as a script they can read and run" \
  jupiter script run:"$ssh_run" --format bash -o fix-sshd.sh
"$J" script run:"$ssh_run" --format bash -o "$WORK/fix-sshd.sh"
sed -n '2,12p' "$WORK/fix-sshd.sh"
cp -a examples/host "$WORK/staging"
echo '$ ./fix-sshd.sh $STAGING --check    (verifies preconditions by hash, changes nothing)'
bash "$WORK/fix-sshd.sh" "$WORK/staging" --check 2>&1 | tail -n 3

step "9. Or start from a configuration that passes every check" \
  jupiter generate firewall --asset-type web_server --allow 80,443 --admin-cidr 10.0.0.0/8
"$J" generate firewall --asset-type web_server --allow 80,443 --admin-cidr 10.0.0.0/8 2>/dev/null \
  | sed -n '1,25p'
echo "..."

step "10. Fix an application: SQL injection, vulnerable pins, Kubernetes, Dockerfile" \
  jupiter advisories import examples/advisories '&&' jupiter fix '$SHOP' --yes
"$J" advisories import examples/advisories
"$J" fix "$WORK/shop" --asset shop --yes | grep -E "verified|needs_manual|run [0-9]+" | cut -c1-150
git --no-pager diff --no-index --stat examples/shop "$WORK/shop" || true

step "11. Governance: roles, a policy decision, an exception approved by a second user" \
  jupiter users add rita --role analyst '&&' jupiter policy eval --input dev-patch.json
"$J" users add rita --role analyst
"$J" users add bob --role admin
"$J" users list
printf '%s\n' '{"decision": "remediation", "input": {"asset": {"environment": "dev"},' \
  ' "change": {"kind": "dependency", "bump": "patch"}, "finding": {"severity": "high"}}}' \
  > "$WORK/dev-patch.json"
echo '$ jupiter policy eval --input dev-patch.json   (a dev patch bump: auto-approved, logged)'
"$J" policy eval --input "$WORK/dev-patch.json"
open_id=$("$J" findings list --asset web-app-01 --status open --json \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)[-1]["id"])')
echo "\$ jupiter --actor rita exceptions request --finding $open_id --reason ... --ticket RISK-42 --expires 14d"
"$J" --actor rita exceptions request --finding "$open_id" --reason "compensating WAF rule" \
  --ticket RISK-42 --expires 14d
echo '$ jupiter --actor rita exceptions approve 1   (refused: approving needs the admin role)'
"$J" --actor rita exceptions approve 1 || true
echo '$ jupiter --actor bob exceptions approve 1'
"$J" --actor bob exceptions approve 1 --comment "reviewed with the app owner"
"$J" findings show "$open_id" --json | python3 -c 'import json,sys; print("finding", sys.argv[1], "is now", json.load(sys.stdin)["status"])' "$open_id"
echo '$ jupiter compliance report --asset bastion-01   (controls before -> after the fixes)'
"$J" compliance report --asset bastion-01

step "12. Roll the sshd fix back, and prove it by hashes" jupiter rollback "$ssh_run" --yes
"$J" rollback "$ssh_run" --yes
if diff -r "$ROOT/examples/host/etc/ssh" "$WORK/host/etc/ssh" >/dev/null; then
  echo "sshd_config and its drop-ins are byte-for-byte what they were before the fix"
else
  echo "rollback left differences" >&2; exit 1
fi

step "13. Every step is in the tamper-evident audit trail" jupiter audit verify
"$J" runs list
"$J" audit verify
"$J" audit export --format cef | tail -n 3


# ---------------------------------------------------------------------------
# The governed workflow across a fleet (the product brief's flow): rollback
# point, staging test, approval, canary deploy judged by health probes, an
# unhealthy canary rolled back by itself, then a healthy rolling deploy.
# ---------------------------------------------------------------------------
FLEET="$WORK/fleet"
mkdir -p "$FLEET"
for i in 1 2 3 4 5 6; do cp -a examples/host "$FLEET/portal-0$i"; done
cp -a examples/host "$FLEET/portal-staging"
# portal-01's application still logs in with a password: disabling password
# login breaks it (its health endpoint answers 500) until keys are deployed.
touch "$FLEET/portal-01/needs-password-login"
"$ROOT/.venv/bin/python" examples/fleet/healthd.py "$FLEET/ports" "$FLEET"/portal-0? &
HEALTHD=$!
for _ in $(seq 100); do [ -f "$FLEET/ports" ] && break; sleep 0.1; done
{
  echo "assets:"
  while read -r root port; do
    name=$(basename "$root")
    echo "  - {id: $name, group: portal, environment: prod, connection: \"local:$root\","
    echo "     probes: [{kind: http, url: \"http://127.0.0.1:$port/health\"}]}"
  done < "$FLEET/ports"
  echo "  - {id: portal-staging, group: portal, environment: staging,"
  echo "     connection: \"local:$FLEET/portal-staging\", tests: [sshd, -t, -f, etc/ssh/sshd_config]}"
} > "$FLEET/fleet.yaml"
mkdir -p "$JUPITER_HOME/workflows"
cp examples/fleet/portal-ssh.yaml "$JUPITER_HOME/workflows/"

step "13. A fleet of six production hosts and one staging host, each with a health probe" \
  jupiter assets import fleet.yaml '&&' jupiter workflows show portal-ssh
"$J" assets import "$FLEET/fleet.yaml"
"$J" workflows show portal-ssh | head -n 20

rem_id() { "$J" remediations list --json | "$ROOT/.venv/bin/python" -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])'; }
brief() { grep -vE '^    #[0-9]+ ' || true; }

step "14. Remediate the group: rollback point, staging test, then wait for approval" \
  jupiter remediate --group portal --only config.ssh --workflow portal-ssh
"$J" remediate --group portal --only config.ssh --workflow portal-ssh | brief
rem=$(rem_id)

step "15. Two approvers (prod needs two, and not the requester); the canaries turn unhealthy and the fleet rolls back by itself" \
  jupiter --actor lena remediations approve "$rem" '&&' jupiter --actor omar remediations approve "$rem"
"$J" users add lena --role approver >/dev/null
"$J" users add omar --role approver >/dev/null
echo '$ jupiter remediations approve '"$rem"'   (refused: the requester cannot approve its own change)'
"$J" remediations approve "$rem" 2>&1 | tail -n 1 || true
"$J" --actor lena remediations approve "$rem" --comment "staging test and diff reviewed" | brief
"$J" --actor omar remediations approve "$rem" | brief || true
"$J" remediations show "$rem" --json | "$ROOT/.venv/bin/python" -c '
import json, sys
r = json.load(sys.stdin)
print("remediation", r["id"], r["status"], "-", r["reason"])
test = r["facts"].get("test") or {}
print("  staging test: {}/{} checks passed, ready_for_production={}".format(
    test.get("tests_passed"), test.get("tests_run"), test.get("ready_for_production")))
def find(d):
    if isinstance(d, dict):
        if "rollback_duration" in d:
            return d
        for v in d.values():
            hit = find(v)
            if hit:
                return hit
    return None
shown = ("status", "reason", "target", "rollback_snapshot", "rollback_duration", "system_status")
for key, value in (find(r["facts"]) or {}).items():
    if key in shown:
        print(f"  {key}: {value}")
'
for t in "$FLEET"/portal-0?; do
  if ! diff -r "$ROOT/examples/host/etc/ssh" "$t/etc/ssh" >/dev/null; then
    echo "$(basename "$t") was not restored" >&2; exit 1
  fi
done
echo "every production host's sshd configuration is byte-for-byte its rollback point"

step "16. Keys deployed on portal-01; a rolling deploy across the fleet goes through" \
  jupiter remediate --group portal --only config.ssh --workflow portal-ssh --strategy rolling
rm "$FLEET/portal-01/needs-password-login"
"$J" remediate --group portal --only config.ssh --workflow portal-ssh --strategy rolling | brief
rem=$(rem_id)
"$J" --actor lena remediations approve "$rem" >/dev/null 2>&1
"$J" --actor omar remediations approve "$rem" | brief

step "17. Every remediation, and the audit chain that proves each step" \
  jupiter remediations list '&&' jupiter audit verify
"$J" remediations list
"$J" scan "$FLEET/portal-03" --asset portal-03 | tail -n 3
"$J" audit verify

step "18. Tracking: the SIEM gets every event, the Jira change ticket is resolved; statistics" \
  jupiter outbox dispatch --once '&&' jupiter stats
"$J" outbox dispatch --once
"$J" outbox list --limit 6
kill "$receivers"; wait "$receivers" 2>/dev/null || true
echo "what the local Splunk HEC and Jira received:"
cat "$WORK/received.json"; echo
"$J" stats

printf '\n\033[1;32mDemo complete.\033[0m Workspace was %s (removed).\n' "$JUPITER_HOME"
