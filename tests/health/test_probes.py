"""Probes against real loopback HTTP servers and real commands."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from jupiter.errors import InputError
from jupiter.health.model import CommandProbe, HttpProbe, MetricProbe
from jupiter.health.probes import NOT_EXPOSITION, check_probe, parse_exposition, sample, sample_all
from tests.health.servers import Behaviour, Route, http_server

EXPOSITION = """# HELP http_requests_total Requests.
# TYPE http_requests_total counter
http_requests_total{code="200",path="/"} 990
http_requests_total{code="500",path="/"} 7
http_requests_total{code="500",path="/api"} 3
# TYPE queue_depth gauge
queue_depth 12
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_http_probe_measures_status_and_latency() -> None:
    behaviour = Behaviour({"/health": Route(delay=0.05), "/broken": Route(status=503)})
    with http_server(behaviour) as srv:
        good = sample(HttpProbe(url=srv.url + "/health"), asset="web-1", root="/srv")
        bad = sample(HttpProbe(name="api", url=srv.url + "/broken"), asset="web-1", root="/srv")
    assert good.ok and good.status == 200 and good.cause is None
    assert good.latency is not None and 0.05 <= good.latency < 1.5
    assert good.probe == "http"  # the metric key, the same on every target
    assert not bad.ok and bad.status == 503 and bad.cause == "status" and bad.probe == "api"
    assert "503" in (bad.error or "")


def test_http_probe_substitutes_asset_into_url() -> None:
    behaviour = Behaviour({"/health/web-7": Route(status=204)})
    with http_server(behaviour) as srv:
        got = sample(
            HttpProbe(url=srv.url + "/health/{asset}", expect_status=204), asset="web-7", root="/"
        )
    assert got.ok and got.status == 204


def test_unreachable_and_slow_endpoints_are_samples_not_exceptions() -> None:
    port = free_port()
    refused = sample(HttpProbe(url=f"http://127.0.0.1:{port}/"), asset="a", root="/")
    assert not refused.ok and refused.cause == "unreachable" and refused.status is None
    with http_server(Behaviour({"*": Route(delay=1.0)})) as srv:
        slow = sample(HttpProbe(url=srv.url + "/", timeout=0.2), asset="a", root="/")
    assert not slow.ok and slow.cause == "timeout" and "0.2s" in (slow.error or "")


def test_command_probe_substitutes_placeholders_per_element_without_a_shell(tmp_path: Path) -> None:
    marker = tmp_path / "alive; rm -rf /"
    marker.write_text("x")
    code = (
        "import pathlib, sys; "
        "sys.exit(0 if pathlib.Path(sys.argv[1]).exists() and sys.argv[2] == 'db 1' else 3)"
    )
    probe = CommandProbe(argv=[sys.executable, "-c", code, "{root}/alive; rm -rf /", "{asset}"])
    assert sample(probe, asset="db 1", root=str(tmp_path)).ok
    failed = sample(probe, asset="db 2", root=str(tmp_path))
    assert not failed.ok and failed.status == 3 and failed.cause == "exit"


def test_command_probe_timeout_and_missing_program(tmp_path: Path) -> None:
    slow = CommandProbe(argv=[sys.executable, "-c", "import time; time.sleep(5)"], timeout=0.3)
    got = sample(slow, asset="a", root=str(tmp_path))
    assert not got.ok and got.cause == "timeout"
    missing = CommandProbe(argv=[str(tmp_path / "no-such-program")])
    gone = sample(missing, asset="a", root=str(tmp_path))
    assert not gone.ok and gone.cause == "unreachable"
    with pytest.raises(InputError, match="was not found"):
        check_probe(missing, asset="a", root=str(tmp_path))
    check_probe(CommandProbe(argv=[sys.executable, "-V"]), asset="a", root=str(tmp_path))


def test_metric_probe_reads_prometheus_text() -> None:
    behaviour = Behaviour({"/metrics": Route(body=EXPOSITION)})
    with http_server(behaviour) as srv:
        url = srv.url + "/metrics"
        errors = sample(
            MetricProbe(url=url, metric="http_requests_total", labels={"code": "500"}, max=20),
            asset="a",
            root="/",
        )
        depth = sample(MetricProbe(url=url, metric="queue_depth", max=10), asset="a", root="/")
        missing = sample(MetricProbe(url=url, metric="nope_total"), asset="a", root="/")
        check_probe(MetricProbe(url=url, metric="queue_depth"), asset="a", root="/")
    assert errors.ok and errors.value == 10
    assert not depth.ok and depth.value == 12 and depth.cause == "range"
    assert not missing.ok and missing.cause == "missing" and "nope_total" in (missing.error or "")


@pytest.mark.parametrize(
    "body", ["<html><body>dashboard</body></html>", '{"up": 1}', "all systems go"]
)
def test_metric_endpoint_that_is_not_exposition_format(body: str) -> None:
    behaviour = Behaviour({"*": Route(body=body, content_type="text/html")})
    with http_server(behaviour) as srv:
        probe = MetricProbe(url=srv.url + "/metrics", metric="up")
        got = sample(probe, asset="a", root="/")
        with pytest.raises(InputError, match=NOT_EXPOSITION):
            check_probe(probe, asset="a", root="/")
    assert not got.ok and got.cause == "invalid" and got.error == NOT_EXPOSITION
    with pytest.raises(InputError, match=NOT_EXPOSITION):
        parse_exposition(body)


def test_metric_source_down_is_unreachable() -> None:
    port = free_port()
    probe = MetricProbe(url=f"http://127.0.0.1:{port}/metrics", metric="up")
    got = sample(probe, asset="a", root="/")
    assert not got.ok and got.cause == "unreachable"
    check_probe(probe, asset="a", root="/")  # down may come up: not a config error


def test_sample_all_reads_each_probe_in_order(tmp_path: Path) -> None:
    with http_server(Behaviour({"/metrics": Route(body=EXPOSITION)})) as srv:
        got = sample_all(
            [
                HttpProbe(name="web", url=srv.url + "/"),
                CommandProbe(name="cmd", argv=[sys.executable, "-c", "pass"]),
                MetricProbe(name="depth", url=srv.url + "/metrics", metric="queue_depth"),
            ],
            asset="a",
            root=str(tmp_path),
        )
    assert [s.probe for s in got] == ["web", "cmd", "depth"]
    assert all(s.ok for s in got)
