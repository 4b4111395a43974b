"""The judge's statistical tests on known distributions."""

from __future__ import annotations

import math

import numpy as np

from jupiter.health import stats


def test_hodges_lehmann_ratio_and_interval_cover_the_true_shift() -> None:
    rng = np.random.default_rng(1)
    covered = 0
    for _ in range(40):
        ref = rng.lognormal(math.log(0.05), 0.5, 800)
        changed = rng.lognormal(math.log(0.05 * 1.3), 0.5, 400)
        c = stats.latency_shift(changed, ref, against="control", alpha=0.01, gate=1.147)
        low, high = c.interval
        covered += low <= 1.3 <= high
        assert 1.15 < c.estimate < 1.5 and c.failing
        assert 0.5 < c.effect_size < 1
    assert covered >= 36  # a 98% interval


def test_a_tolerated_slowdown_is_not_significant_with_many_readings() -> None:
    rng = np.random.default_rng(2)
    ref = rng.lognormal(0, 0.5, 20_000)
    changed = rng.lognormal(math.log(1.05), 0.5, 20_000)
    plain = stats.latency_shift(changed, ref, against="control", alpha=0.01, gate=1.0)
    tolerant = stats.latency_shift(
        changed, ref, against="control", alpha=0.01, gate=1.0, tolerated=1.095
    )
    assert plain.significant and not tolerant.significant


def test_tail_test_catches_a_wider_spread_with_the_same_median() -> None:
    rng = np.random.default_rng(3)
    ref = rng.lognormal(0, 0.5, 3000)
    wide = rng.lognormal(0, 0.5 * math.sqrt(2), 1000)
    shift = stats.latency_shift(wide, ref, against="control", alpha=0.01, gate=1.147)
    tail = stats.latency_tail(wide, ref, against="control", alpha=0.01, gate=1.2)
    assert not shift.failing
    assert tail.failing and tail.estimate > 1.3 and tail.effect_size > 0.1


def test_error_rate_works_with_a_zero_error_reference() -> None:
    c = stats.error_rate(6, 200, 0, 1000, against="baseline", alpha=0.001, gate=0.005)
    assert c.failing and c.estimate == 0.03 and c.effect_size == math.inf
    low, high = c.interval
    assert low < 0.03 < high
    quiet = stats.error_rate(1, 200, 0, 1000, against="baseline", alpha=0.001, gate=0.005)
    assert not quiet.failing  # one error in 200 is not significant
    json = quiet.to_json()
    assert json["effect_size"] is None and json["failing"] is False
