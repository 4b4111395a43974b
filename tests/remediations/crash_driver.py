"""A process to kill: drives a remediation of the test fleet (AppFix
remediator only, so it is quick) from the command line.

    python -m tests.remediations.crash_driver HOME create|resume|answer [NAME=VALUE]
Prints the final state as JSON; ``JUPITER_FAULT`` kills it at that point."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson

from jupiter.engine import Engine
from jupiter.workspace import Workspace
from tests.remediations.fleetlib import use_app_plugin


def main(argv: list[str]) -> int:
    home, action = Path(argv[0]), argv[1]
    eng = Engine(Workspace(home, f"sqlite:///{home / 'jupiter.db'}"), actor="crash-driver")
    use_app_plugin(eng)
    if action == "create":
        made = eng.remediations.create(group="web", workflow="wf")
        assert made.remediation is not None
        info = eng.remediations.run(made.remediation.id)
    elif action == "resume":
        info = eng.remediations.resume("REM-1")
    else:
        fields = dict(a.split("=", 1) for a in argv[2:])
        info = eng.remediations.answer("REM-1", fields)
    sys.stdout.write(orjson.dumps(info.to_json()).decode())
    eng.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
