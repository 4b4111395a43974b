"""Health probes, baselines and the judge that decides whether a deploy
stays (see :mod:`jupiter.health.model`)."""
