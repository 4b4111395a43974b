"""A local Splunk HEC and Jira for `make demo`: one HTTP server on loopback
(the test suite's fakes, which check the token and speak the real JSON
shapes). Prints its base URL, then serves until killed; on SIGTERM it writes
what it received (HEC events, Jira issues with status and comments) as JSON
to the file given as the first argument."""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.integrations.servers import FakeHec, FakeJira, Request, http_server  # noqa: E402

TOKEN = "demo-hec-token-0000"  # noqa: S105 - a local fake's token


def main() -> None:
    out = Path(sys.argv[1])
    hec, jira = FakeHec(TOKEN), FakeJira()

    def route(req: Request) -> tuple[int, object]:
        return hec(req) if req.path.startswith("/services/collector") else jira(req)

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with http_server(route) as rec:
        print(rec.url, flush=True)
        done.wait()
    summary = {
        "hec_events": [e["event"]["event"] for e in hec.events],
        "jira": {
            k: {"status": i["status"], "comments": len(i["comments"])}
            for k, i in jira.issues.items()
        },
    }
    out.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
