"""The fleet helper itself: copies, assets.yaml, servers, knobs and rules."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from jupiter.engine import load_asset_file
from jupiter.health.model import HttpProbe, MetricProbe
from tests.fleet import EXAMPLE_HOST, HealthServer, build_fleet, running_fleet, tree_bytes


def get(url: str) -> tuple[int, str, float]:
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode(), time.perf_counter() - started
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), time.perf_counter() - started


def test_fleet_copies_and_assets_file(tmp_path: Path) -> None:
    with running_fleet(tmp_path, 3, staging=1, probe_kinds=("http", "metric")) as fleet:
        assert [t.asset for t in fleet.prod] == ["web-fleet-01", "web-fleet-02", "web-fleet-03"]
        assert [t.asset for t in fleet.staging] == ["web-fleet-staging-01"]
        original = tree_bytes(EXAMPLE_HOST)
        for t in fleet.targets:
            assert tree_bytes(t.root) == original
            assert (t.root / "etc/ssh/sshd_config").stat().st_mode & 0o777 == 0o644
        # Copies are independent.
        (fleet.prod[0].root / "etc/ssh/sshd_config").write_text("changed\n")
        assert tree_bytes(fleet.prod[1].root) == original

        specs = {s.id: s for s in load_asset_file(fleet.assets_file)}
        assert set(specs) == {t.asset for t in fleet.targets}
        one = specs["web-fleet-02"]
        assert one.group == "web-fleet" and one.environment == "prod"
        assert one.connection == f"local:{fleet.prod[1].root}"
        http, metric = one.probes
        assert isinstance(http, HttpProbe) and isinstance(metric, MetricProbe)
        assert http.url == fleet.prod[1].server.health_url  # type: ignore[union-attr]
        assert specs["web-fleet-staging-01"].environment == "staging"


def test_servers_answer_and_stop(tmp_path: Path) -> None:
    with running_fleet(tmp_path, 2) as fleet:
        ports = {t.server.port for t in fleet.targets}  # type: ignore[union-attr]
        assert len(ports) == 2
        for t in fleet.targets:
            assert t.server is not None
            assert get(t.server.health_url)[:2] == (200, "ok\n")
            status, text, _ = get(t.server.metrics_url)
            assert status == 200
            assert "app_up 1" in text and 'app_requests_total{handler="health"} 1' in text
        url = fleet.prod[0].server.health_url  # type: ignore[union-attr]
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, timeout=2)


def test_knobs_status_delay_jitter_gauges(tmp_path: Path) -> None:
    server = HealthServer(tmp_path)
    try:
        server.status = 503
        assert get(server.health_url)[0] == 503
        assert "app_up 0" in get(server.metrics_url)[1]
        server.status = 200
        server.delay = 0.15
        assert get(server.health_url)[2] >= 0.15
        server.delay, server.jitter = 0.0, 0.05
        assert all(get(server.health_url)[2] < 1.0 for _ in range(3))
        server.gauges["queue_depth"] = 7
        assert "queue_depth 7" in get(server.metrics_url)[1]
        assert server.requests == 5 and server.errors == 1
        assert get(server.url + "/nope")[0] == 404
    finally:
        server.stop()


def test_rule_flips_with_the_file_and_back(tmp_path: Path) -> None:
    with running_fleet(tmp_path, 2, delay=0.02) as fleet:
        bad, good = fleet.prod
        assert bad.server is not None and good.server is not None
        bad.server.when("etc/ssh/sshd_config", "PermitRootLogin no", status=500)
        good.server.when("etc/ssh/sshd_config", "PermitRootLogin no", slow=10)
        assert get(bad.server.health_url)[0] == 200
        assert get(good.server.health_url)[2] < 0.2

        for t in (bad, good):
            config = t.root / "etc/ssh/sshd_config"
            original = config.read_text()
            assert "PermitRootLogin yes" in original
            config.write_text(original.replace("PermitRootLogin yes", "PermitRootLogin no"))
        assert get(bad.server.health_url)[0] == 500
        assert "app_error_ratio 1.000000" in get(bad.server.metrics_url)[1]
        status, _, took = get(good.server.health_url)
        assert status == 200 and took >= 0.2

        # Rolled back: healthy and fast again.
        (bad.root / "etc/ssh/sshd_config").write_text(original)
        assert get(bad.server.health_url)[0] == 200


def test_blue_green_layout(tmp_path: Path) -> None:
    fleet = build_fleet(tmp_path, 2, servers=False, blue_green=True)
    for t in fleet.targets:
        assert (t.root / "current").is_symlink()
        assert (t.root / "current").readlink() == Path("blue")
        assert (t.root / "green").is_dir() and not any((t.root / "green").iterdir())
        assert t.file("etc/ssh/sshd_config") == t.root / "current/etc/ssh/sshd_config"
    specs = load_asset_file(fleet.assets_file)
    assert specs[0].blue_green is not None and specs[0].blue_green.slots == ["blue", "green"]
    assert specs[0].probes == []
