"""Take one reading of a health probe on one target.

Reading a probe never raises for what the endpoint does: a refused
connection, a timeout, a crashed command or a page that is not Prometheus
text all come back as a ``Sample`` with ``ok=False``, an ``error`` sentence
and a ``cause`` (see :data:`jupiter.health.model.Cause`), so a bake keeps
going and the judge decides. Configuration that can never work (a command
that does not exist, an endpoint that is not Prometheus text) is refused up
front by :func:`check_probe`, with an ``InputError``.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

import httpx

from jupiter.errors import InputError
from jupiter.health.model import CommandProbe, HttpProbe, MetricProbe, Sample
from jupiter.redact import redact_text

NOT_EXPOSITION = "not Prometheus exposition format"
_T = TypeVar("_T")
_PLACEHOLDERS = ("{root}", "{asset}")
_BODY_LIMIT = 8 * 1024 * 1024


def fill(text: str, *, asset: str, root: str) -> str:
    """``text`` with ``{root}`` and ``{asset}`` replaced (nothing else is
    interpreted: no format specs, no shell)."""
    return text.replace("{root}", root).replace("{asset}", asset)


def sample(
    probe: HttpProbe | CommandProbe | MetricProbe,
    *,
    asset: str,
    root: str,
    client: httpx.Client | None = None,
) -> Sample:
    """One reading of ``probe`` on the target ``asset`` rooted at ``root``."""
    if isinstance(probe, HttpProbe):
        return _with_client(client, lambda c: _http(probe, c, asset=asset, root=root))
    if isinstance(probe, MetricProbe):
        return _with_client(client, lambda c: _metric(probe, c, asset=asset, root=root))
    return _command(probe, asset=asset, root=root)


def sample_all(
    probes: Iterable[HttpProbe | CommandProbe | MetricProbe],
    *,
    asset: str,
    root: str,
) -> list[Sample]:
    """One reading of every probe on one target, in order."""
    return [sample(p, asset=asset, root=root) for p in probes]


def check_probe(probe: HttpProbe | CommandProbe | MetricProbe, *, asset: str, root: str) -> None:
    """Refuse, before anything is deployed, a probe that cannot work: a
    command whose program does not exist, or a metric endpoint whose answer
    is not Prometheus text. An endpoint that is merely down is left to the
    judge (it may come up)."""
    if isinstance(probe, CommandProbe):
        program = fill(probe.argv[0], asset=asset, root=root)
        if shutil.which(program) is None:
            raise InputError(
                f"health probe {probe.label!r}: program {program!r} was not found; "
                "give an existing executable as the first argv element."
            )
        return
    if isinstance(probe, MetricProbe):
        url = fill(probe.url, asset=asset, root=root)
        try:
            response = _with_client(None, lambda c: c.get(url, timeout=probe.timeout))
        except httpx.HTTPError:
            return
        if response.status_code == 200:
            try:
                parse_exposition(response.text)
            except InputError as exc:
                raise InputError(
                    f"health probe {probe.label!r}: {url} returned text that is "
                    f"{NOT_EXPOSITION}; point the probe at a Prometheus /metrics endpoint."
                ) from exc


def parse_exposition(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Every sample in Prometheus text exposition ``text`` as (name, labels,
    value); InputError when the text is not that format."""
    from prometheus_client.parser import text_string_to_metric_families

    stripped = text.lstrip()
    if stripped.startswith(("<", "{", "[")):
        # HTML or JSON: the parser would skip some of it as junk lines.
        raise InputError(f"the text is {NOT_EXPOSITION}; expected `name{{labels}} value` lines.")
    try:
        return [
            (s.name, dict(s.labels), float(s.value))
            for family in text_string_to_metric_families(text)
            for s in family.samples
        ]
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        raise InputError(
            f"the text is {NOT_EXPOSITION} ({exc}); expected `name{{labels}} value` lines."
        ) from exc


def _client() -> httpx.Client:
    # trust_env=False: health endpoints are read directly, never through a
    # proxy taken from the environment.
    return httpx.Client(trust_env=False, follow_redirects=False)


_shared: httpx.Client | None = None
_shared_lock = threading.Lock()


def _with_client(client: httpx.Client | None, read: Callable[[httpx.Client], _T]) -> _T:
    global _shared
    if client is None:
        # One client for the process: building one (its TLS context) costs
        # more than a loopback request.
        with _shared_lock:
            if _shared is None:
                _shared = _client()
            client = _shared
    return read(client)


def _get(
    label: str, url: str, client: httpx.Client, timeout: float
) -> tuple[httpx.Response | None, float, Sample | None]:
    start = time.perf_counter()
    try:
        response = client.get(url, timeout=timeout)
    except httpx.TimeoutException:
        elapsed = time.perf_counter() - start
        return (
            None,
            elapsed,
            Sample(
                label,
                ok=False,
                at=time.time(),
                latency=elapsed,
                error=f"{url} did not answer within {timeout:g}s",
                cause="timeout",
            ),
        )
    except httpx.HTTPError as exc:
        elapsed = time.perf_counter() - start
        return (
            None,
            elapsed,
            Sample(
                label,
                ok=False,
                at=time.time(),
                error=f"{url} is unreachable: {type(exc).__name__}: {exc}",
                cause="unreachable",
            ),
        )
    return response, time.perf_counter() - start, None


def _http(probe: HttpProbe, client: httpx.Client, *, asset: str, root: str) -> Sample:
    url = fill(probe.url, asset=asset, root=root)
    response, elapsed, failed = _get(probe.label, url, client, probe.timeout)
    if failed is not None or response is None:
        assert failed is not None
        return failed
    ok = response.status_code == probe.expect_status
    return Sample(
        probe.label,
        ok=ok,
        at=time.time(),
        latency=elapsed,
        status=response.status_code,
        error=None if ok else f"{url} answered {response.status_code}, not {probe.expect_status}",
        cause=None if ok else "status",
    )


def _metric(probe: MetricProbe, client: httpx.Client, *, asset: str, root: str) -> Sample:
    url = fill(probe.url, asset=asset, root=root)
    response, elapsed, failed = _get(probe.label, url, client, probe.timeout)
    if failed is not None or response is None:
        assert failed is not None
        return failed
    now = time.time()
    if response.status_code != 200:
        return Sample(
            probe.label,
            ok=False,
            at=now,
            latency=elapsed,
            status=response.status_code,
            error=f"{url} answered {response.status_code}, expected 200",
            cause="unreachable",
        )
    try:
        rows = parse_exposition(response.text[:_BODY_LIMIT])
    except InputError:
        return Sample(
            probe.label,
            ok=False,
            at=now,
            latency=elapsed,
            status=200,
            error=NOT_EXPOSITION,
            cause="invalid",
        )
    values = [
        value
        for name, labels, value in rows
        if name == probe.metric and all(labels.get(k) == v for k, v in probe.labels.items())
    ]
    if not values:
        wanted = probe.metric + (f"{probe.labels}" if probe.labels else "")
        return Sample(
            probe.label,
            ok=False,
            at=now,
            latency=elapsed,
            status=200,
            error=f"metric {wanted} is missing from {url}",
            cause="missing",
        )
    value = math.fsum(values)
    low = probe.min is not None and value < probe.min
    high = probe.max is not None and value > probe.max
    ok = not (low or high) and not math.isnan(value)
    return Sample(
        probe.label,
        ok=ok,
        at=now,
        latency=elapsed,
        status=200,
        value=value,
        error=None if ok else f"{probe.metric} = {value:g} is outside [{probe.min}, {probe.max}]",
        cause=None if ok else "range",
    )


def _command(probe: CommandProbe, *, asset: str, root: str) -> Sample:
    argv: Sequence[str] = [fill(part, asset=asset, root=root) for part in probe.argv]
    start = time.perf_counter()
    try:
        done = subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=probe.timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        elapsed = time.perf_counter() - start
        return Sample(
            probe.label,
            ok=False,
            at=time.time(),
            latency=elapsed,
            error=f"{argv[0]} did not finish within {probe.timeout:g}s",
            cause="timeout",
        )
    except OSError as exc:
        return Sample(
            probe.label,
            ok=False,
            at=time.time(),
            error=f"{argv[0]} could not be run: {exc.strerror or exc}",
            cause="unreachable",
        )
    elapsed = time.perf_counter() - start
    ok = done.returncode == 0
    stderr = done.stderr.decode("utf-8", "replace").strip() if not ok else ""
    tail = redact_text(stderr).splitlines()[-1:]
    return Sample(
        probe.label,
        ok=ok,
        at=time.time(),
        latency=elapsed,
        status=done.returncode,
        error=None
        if ok
        else f"{argv[0]} exited {done.returncode}" + (f": {tail[0][:200]}" if tail else ""),
        cause=None if ok else "exit",
    )
