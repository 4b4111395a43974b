"""A tiny stand-in for the applications on the demo fleet: one loopback
HTTP health endpoint per host, ``GET /health``.

    python3 healthd.py PORTFILE ROOT [ROOT ...]

Each ROOT gets its own server on a free port; PORTFILE receives
``ROOT PORT`` lines once all of them listen. A host whose root holds the
file ``needs-password-login`` models an application that still logs in with
a password: once that host's sshd_config says ``PasswordAuthentication no``,
its endpoint answers 500. Delete the file (the team deployed keys) and it
is healthy again. Runs until killed.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_NO_PASSWORDS = re.compile(r"^\s*PasswordAuthentication\s+no\b", re.M | re.I)


def handler(root: Path) -> type[BaseHTTPRequestHandler]:
    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            broken = False
            if (root / "needs-password-login").exists():
                ssh = root / "etc/ssh"
                configs = [ssh / "sshd_config", *sorted(ssh.glob("sshd_config.d/*.conf"))]
                broken = any(_NO_PASSWORDS.search(c.read_text(errors="replace")) for c in configs)
            time.sleep(0.003)
            body = b"password login refused\n" if broken else b"ok\n"
            self.send_response(500 if broken else 200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    return Health


def main() -> None:
    portfile, roots = Path(sys.argv[1]), [Path(r).resolve() for r in sys.argv[2:]]
    lines = []
    for root in roots:
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler(root))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        lines.append(f"{root} {server.server_address[1]}")
    tmp = portfile.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(portfile)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
