"""Repositories in the shapes teams keep daemon configuration in, built for the
configs-anywhere tests (lab repo, database repo, Docker build context,
Ansible role)."""

from __future__ import annotations

import subprocess
from pathlib import Path

LAB_SSHD = """\
# SSH hardening lab: the server configuration we teach with
Include sshd_config.d/*.conf
Include /etc/ssh/site/*.conf
Port 22
PermitRootLogin yes
PasswordAuthentication yes
X11Forwarding yes
UsePAM yes
Subsystem sftp /usr/lib/openssh/sftp-server
"""
README_FRAGMENT = """\
# sshd_config

This folder explains how to configure the SSH server.
Copy the lab file and restart the service.
"""
DB_CONF = """\
# PostgreSQL as we deploy it
data_directory = '/var/lib/postgresql/15/main'
hba_file = '/etc/postgresql/15/main/pg_hba.conf'
listen_addresses = 'localhost'
port = 5432
max_connections = 100
ssl = on
ssl_cert_file = '/etc/ssl/certs/ssl-cert-snakeoil.pem'
ssl_key_file = '/etc/ssl/private/ssl-cert-snakeoil.key'
password_encryption = scram-sha-256
include_dir = 'conf.d'
include_if_exists = '/etc/postgresql/site.conf'
"""
DB_HBA = """\
local   all   postgres                peer
local   all   all                     trust
host    all   all   127.0.0.1/32      scram-sha-256
"""
DOCKERFILE = """\
FROM debian:12.8
RUN apt-get update && apt-get install -y --no-install-recommends openssh-server \\
    && rm -rf /var/lib/apt/lists/*
COPY config/server.conf /etc/ssh/sshd_config
RUN echo "PermitRootLogin yes" >> /etc/ssh/sshd_config
RUN sed -i 's/^#Port 22/Port 2222/' /etc/ssh/sshd_config
USER nobody
CMD ["/usr/sbin/sshd", "-D"]
"""
IMAGE_SSHD = """\
Port 22
PermitRootLogin yes
PasswordAuthentication no
UsePAM yes
Subsystem sftp /usr/lib/openssh/sftp-server
"""
ROLE_TEMPLATE = """\
# {{ ansible_managed }}
Port {{ ssh_port }}
PermitRootLogin {{ ssh_permit_root }}
X11Forwarding yes
{% if ssh_sftp %}
Subsystem sftp /usr/lib/openssh/sftp-server
{% endif %}
"""
ROLE_DEFAULTS = """\
---
ssh_port: 22
ssh_permit_root: "yes"
ssh_sftp: true
"""
BROKEN_TEMPLATE = """\
PermitRootLogin yes
{% if ssh_sftp %}
Subsystem sftp /usr/lib/openssh/sftp-server
"""


def write(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


def lab(root: Path) -> Path:
    return write(
        root,
        {
            "ssh-hardening/sshd_config": LAB_SSHD,
            "ssh-hardening/sshd_config.d/10-tries.conf": "MaxAuthTries 10\n",
            "docs/sshd_config": README_FRAGMENT,
            "README.md": "# lab\n",
        },
    )


def database(root: Path) -> Path:
    return write(
        root,
        {
            "postgresql.conf": DB_CONF,
            "conf.d/logging.conf": "log_connections = off\nlog_disconnections = on\n",
            "pg_hba.conf": DB_HBA,
        },
    )


def image(root: Path) -> Path:
    return write(root, {"Dockerfile": DOCKERFILE, "config/server.conf": IMAGE_SSHD})


def role(root: Path) -> Path:
    return write(
        root,
        {
            "roles/ssh/templates/sshd_config.j2": ROLE_TEMPLATE,
            "roles/ssh/defaults/main.yml": ROLE_DEFAULTS,
            "roles/broken/templates/sshd_config.j2": BROKEN_TEMPLATE,
        },
    )


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, timeout=30
    ).stdout.strip()


def commit_all(root: Path) -> Path:
    git(root.parent, "init", "-q", "-b", "main", str(root))
    git(root, "config", "user.name", "Dev")
    git(root, "config", "user.email", "dev@example.com")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    return root


def files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and ".git" not in p.relative_to(root).parts
    }
