"""Coverage-guided fuzzing (atheris) of one parser entry point, bounded in
time; a crashing input is saved under ``tests/fixtures/fuzz/`` where
``test_fuzz_inputs.py::test_saved_crashers_stay_fixed`` replays it.

    python -m tests.reliability.fuzz_parsers TARGET SECONDS

TARGET is ``ingest-sarif``, ``ingest-json`` or a remediator name from
``tests.reliability.test_fuzz_inputs.CONFIGS`` (its first config file).
Exit 0 when nothing but JupiterError came out within SECONDS.
"""

from __future__ import annotations

import hashlib
import sys
import tempfile

import atheris

with atheris.instrument_imports(include=["jupiter"]):
    from jupiter.errors import JupiterError
    from tests.reliability import test_fuzz_inputs as cases


def main(argv: list[str]) -> int:
    target, seconds = argv[0], float(argv[1])
    if target.startswith("ingest-"):
        suffix = ".sarif" if target == "ingest-sarif" else ".json"

        def run(data: bytes) -> None:
            cases._ingest(data, suffix)

        where = cases.SAVED / "ingest"
        seeds = [p for p in cases.REPORTS if p.suffix == suffix]
    else:
        remediator, rel, sample = next(c for c in cases.CONFIGS if c[0] == target)

        def run(data: bytes) -> None:
            cases._detect(remediator, rel, data)

        where = (
            cases.SAVED / remediator / rel.rsplit("/", 1)[0]
            if "/" in rel
            else (cases.SAVED / remediator)
        )
        seeds = [sample]

    def one(data: bytes) -> None:
        try:
            run(data)
        except JupiterError:
            pass
        except Exception:
            where.mkdir(parents=True, exist_ok=True)
            name = (
                rel.rsplit("/", 1)[-1]
                if not target.startswith("ingest-")
                else (f"crash-{hashlib.sha256(data).hexdigest()[:12]}{suffix}")
            )
            (where / name).write_bytes(data)
            raise

    for seed in seeds:  # the real samples first, then mutations of them
        one(seed.read_bytes())
    scratch = tempfile.mkdtemp(prefix="jupiter-fuzz-")
    flags = [f"-max_total_time={int(seconds)}", "-max_len=65536", f"-artifact_prefix={scratch}/"]
    atheris.Setup([sys.argv[0], *flags], one)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
