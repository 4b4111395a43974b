#!/usr/bin/env bash
# External tools the tests drive as real subprocesses, each in its own venv
# under .tools/ (they pin versions that would fight the project's own):
#   bandit   - verifies SQL-injection fixes (B608 gone)
#   checkov  - verifies Kubernetes / Dockerfile / CloudFormation fixes
#   cfn-lint - CloudFormation templates lint clean before and after a fix
#   ansible  - syntax- and check-mode runs of exported playbooks
#   ssh-audit - judges a running sshd's algorithms (the sshd crypto levels)
#   sslyze   - judges a PostgreSQL server fixed by Jupiter against Mozilla's TLS profiles
# Idempotent: a tool already installed at the pinned version is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TOOLS=.tools

install() { # name, probe-binary, pip requirement...
  local name=$1 probe=$2; shift 2
  local venv=$TOOLS/$name stamp=$TOOLS/$name/.jupiter-installed want="$*"
  if [ -x "$venv/bin/$probe" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  printf 'tools: installing %s into %s\n' "$want" "$venv" >&2
  rm -rf "$venv"
  "$PYTHON" -m venv "$venv"
  # (this machine's pip config names local mirrors that may be absent: drop that noise)
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$@" 2>&1 \
    | { grep -v "^WARNING: Location 'file:" || true; } >&2
  echo "$want" > "$stamp"
}

install bandit bandit 'bandit[sarif]==1.9.4'
install checkov checkov 'checkov==3.3.30'
install cfn-lint cfn-lint 'cfn-lint==1.*'
install ansible ansible-playbook 'ansible-core>=2.17,<2.20'
install ssh-audit ssh-audit 'ssh-audit==3.9.0'
install sslyze sslyze 'sslyze==6.3.1'
