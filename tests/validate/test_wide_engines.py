"""1000-class engines of every CPU target timed through validate and ``report compare``'s side by
side timing, every worker process heap-checked (tests/heapcheck.py; tests/conftest.py turns it
on for every process the tests start)."""

from __future__ import annotations

import os

import pytest

from dense_edge.compile.stage import compile_stage
from dense_edge.targets import registry
from dense_edge.validate.side_by_side import Pair, time_pairs
from dense_edge.validate.stage import validate_stage
from tests.heapcheck import HEAP_CHECK_ENV, make_wide_run

CPU_TARGETS = [t for t in registry.all_targets() if t.device_kind == "cpu"]


@pytest.fixture(scope="module")
def wide_engines(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    recipe, run = make_wide_run(tmp_path_factory.mktemp("wide-validate"))
    built = []
    for target in CPU_TARGETS:
        if not target.status().installed:
            continue
        built.append(compile_stage(recipe, run, target.name, "fp32").path)
    return recipe, run, built


@pytest.mark.slow
def test_1000_class_engines_are_timed_through_validate_and_compare(wide_engines):
    assert all(os.environ.get(k) == v for k, v in HEAP_CHECK_ENV.items())  # the workers inherit it
    recipe, run, built = wide_engines
    assert built, "no CPU target is installed"
    report = validate_stage(recipe, run, engines=[p.name for p in built])
    assert report["reference_check"]["status"] != "unsound", report["reference_check"]
    measured = {e["name"]: e for e in report["engines"] if not e["is_reference"]}
    assert set(measured) == {p.name for p in built}
    for e in measured.values():
        assert e["accuracy"]["agreement_fraction"] == 1.0, e["name"]
        assert set(e["latency"]) == {"1", "4"}
    timings = time_pairs([Pair(p.name, p, p) for p in built], [1, 4], rounds=1, burst_s=0.05)
    assert {t.name for t in timings} == {p.name for p in built}
