#!/usr/bin/env bash
# Make sure what the tests talk to is installed and answering on loopback:
# PostgreSQL at 127.0.0.1:5432 (database `test`, trust auth), Debian's
# openssh-server (sshd -t validator, test SSH server), nftables (nft -c),
# the shell linter (exported bash scripts), git (git delivery) and
# bubblewrap (custom scripts run confined by bwrap) and Chromium (console
# browser tests).
# Idempotent and quick when everything is already there.
set -euo pipefail

log() { printf 'services: %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else
    log "need root to run: $*"; return 1; fi
}

apt_updated=0
apt_install() {
  if [ "$apt_updated" -eq 0 ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    apt_updated=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

pg_answers() { pg_isready -q -h 127.0.0.1 -p 5432 -t 3 2>/dev/null; }

# --- validators and SSH ------------------------------------------------------
missing=()
command -v sshd >/dev/null || [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v ssh-keygen >/dev/null || missing+=(openssh-client)
command -v nft >/dev/null || [ -x /usr/sbin/nft ] || missing+=(nftables)
command -v shellcheck >/dev/null || missing+=(shellcheck)
command -v git >/dev/null || missing+=(git)
# bubblewrap confines custom remediation scripts (docs/remediation.md).
command -v bwrap >/dev/null || missing+=(bubblewrap)
# Debian's Chromium drives the web console's browser tests (Playwright with
# executable_path=/usr/bin/chromium; no browser download).
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  apt_install "${missing[@]}"
fi
[ -d /run/sshd ] || as_root mkdir -p /run/sshd

# --- PostgreSQL --------------------------------------------------------------
if ! command -v pg_isready >/dev/null; then
  log "installing postgresql"
  apt_install postgresql postgresql-client
fi
if ! pg_answers; then
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    log "installing postgresql"
    apt_install postgresql
  fi
  version=$(ls /etc/postgresql | sort -V | tail -n1)
  conf=/etc/postgresql/$version/main
  # Trust on loopback, as CI's own server is configured; the tests create
  # and drop their own schemas inside the `test` database.
  if ! grep -q '^host all all 127.0.0.1/32 trust' "$conf/pg_hba.conf"; then
    as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$conf/pg_hba.conf"
  fi
  log "starting PostgreSQL $version"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do pg_answers && break; sleep 1; done
  pg_answers || { log "PostgreSQL did not start on 127.0.0.1:5432"; exit 1; }
fi
if ! psql -h 127.0.0.1 -U postgres -d test -Atc 'select 1' >/dev/null 2>&1; then
  psql -h 127.0.0.1 -U postgres -d postgres -Atc 'create database test' >/dev/null
fi

# --- Celery brokers (tests/executors): Redis 6379 and RabbitMQ 5672 (guest) --
port_answers() { timeout 2 bash -c "</dev/tcp/127.0.0.1/$1" 2>/dev/null; }
if ! port_answers 6379; then
  command -v redis-server >/dev/null || { log "installing redis-server"; apt_install redis-server; }
  log "starting Redis"
  as_root redis-server --bind 127.0.0.1 --port 6379 --daemonize yes >/dev/null
  for _ in $(seq 1 30); do port_answers 6379 && break; sleep 1; done
  port_answers 6379 || { log "Redis did not start on 127.0.0.1:6379"; exit 1; }
fi
if ! port_answers 5672; then
  command -v rabbitmq-server >/dev/null || [ -x /usr/sbin/rabbitmq-server ] || {
    log "installing rabbitmq-server"; apt_install rabbitmq-server; }
  log "starting RabbitMQ"
  as_root rabbitmq-server -detached >/dev/null 2>&1 || true
  for _ in $(seq 1 60); do port_answers 5672 && break; sleep 1; done
  port_answers 5672 || { log "RabbitMQ did not start on 127.0.0.1:5672"; exit 1; }
fi
log "ready: PostgreSQL 127.0.0.1:5432/test, Redis 6379, RabbitMQ 5672, sshd, nft"
