"""`report compare` timing both versions of an engine side by side, on real engines."""

from __future__ import annotations

import copy
import json
import shutil

from click.testing import CliRunner

from dense_edge import bundle as bundle_io
from dense_edge.cli import cli
from dense_edge.report.regression import RegressionTolerance, compare, side_by_side_pairs
from dense_edge.validate.side_by_side import Pair, PairedTiming, time_pairs


def _timing(ratios, base_ms=1.0):  # type: ignore[no-untyped-def]
    return PairedTiming(
        name="openvino-int8",
        batch=1,
        base_ms=tuple(base_ms for _ in ratios),
        new_ms=tuple(base_ms * r for r in ratios),
        ratios=tuple(ratios),
    )


def _paired_statuses(report, timing, *tolerances):  # type: ignore[no-untyped-def]
    result = compare(report, report, RegressionTolerance.parse(tolerances), paired=[timing])
    return {r.metric: r.status for r in result.rows if r.engine == timing.name and "b1" in r.metric}


def test_a_paired_slowdown_needs_its_size_and_every_round(validated):  # type: ignore[no-untyped-def]
    report = validated[1]
    slower = _timing([1.31, 1.28, 1.35, 1.3, 1.29, 1.33, 1.3])
    statuses = _paired_statuses(report, slower)
    assert statuses["p50 ms b1 (side by side, 7 rounds)"] == "REGRESSION"
    # what the reports say is context once the engines were timed together
    assert statuses["p50 ms b1 (drift-corrected)"] == "shown"
    assert statuses["p50 ms b1"] == "shown"
    # within the tolerance: not a regression, however consistent
    assert "REGRESSION" not in _paired_statuses(report, slower, "paired=40").values()
    # large but not in every round (the interval reaches below 1): noise, not a regression
    mixed = _timing([1.5, 0.9, 1.4, 1.6, 0.95, 1.45, 1.5])
    assert _paired_statuses(report, mixed)["p50 ms b1 (side by side, 7 rounds)"] == "ok"
    faster = _timing([0.5, 0.52, 0.49, 0.5, 0.51, 0.5, 0.48])
    assert _paired_statuses(report, faster)["p50 ms b1 (side by side, 7 rounds)"] == "improved"


def test_an_engine_timed_against_itself_is_not_a_regression(validated):  # type: ignore[no-untyped-def]
    run, report = validated
    folder = run.root / "engines" / "onnxruntime-int8"
    timings = time_pairs([Pair("onnxruntime-int8", folder, folder)], [1, 4], rounds=5, burst_s=0.05)
    assert [(t.batch, len(t.ratios)) for t in timings] == [(1, 5), (4, 5)]
    for t in timings:
        assert all(ms > 0 for ms in t.base_ms + t.new_ms)
        lo, hi = t.ratio_ci
        assert lo <= t.ratio <= hi
        assert 0.5 < t.ratio < 2.0
    result = compare(report, report, RegressionTolerance(), paired=timings)
    assert not result.regressions


def test_compare_times_engines_still_here_and_says_why_not_others(validated, tmp_path):  # type: ignore[no-untyped-def]
    run, report = validated
    copy_root = tmp_path / "run"
    shutil.copytree(run.root, copy_root, ignore=shutil.ignore_patterns(".dense-edge"))
    new = copy.deepcopy(report)
    new["run_dir"] = str(copy_root)
    # the copy's openvino-int8 was rebuilt after the report into another engine (a weight
    # differs, its manifest resealed); a rebuild into the same engine would still be timed
    # (tests/report/test_trust.py)
    rebuilt = copy_root / "engines" / "openvino-int8"
    weights = bytearray((rebuilt / "model.bin").read_bytes())
    weights[len(weights) // 2] ^= 0x40
    (rebuilt / "model.bin").write_bytes(bytes(weights))
    manifest = json.loads((rebuilt / bundle_io.MANIFEST).read_text())
    manifest["created"] = "2026-01-01T00:00:00+00:00"
    manifest["files"]["model.bin"]["sha256"] = bundle_io.sha256(rebuilt / "model.bin")
    (rebuilt / bundle_io.MANIFEST).write_text(json.dumps(bundle_io.seal(manifest)))
    shutil.rmtree(copy_root / "engines" / "onnxruntime-fp32")  # and one engine is gone
    base_path = run.report / "report.json"
    new_path = copy_root / "report" / "report.json"
    new_path.write_text(json.dumps(new, default=str))

    pairs, why = side_by_side_pairs(report, base_path, new, new_path)
    assert [p.name for p in pairs] == ["onnxruntime-int8"]
    assert pairs[0].base != pairs[0].new
    assert any("openvino-int8" in w and "rebuilt after its report" in w for w in why)
    assert any("onnxruntime-fp32" in w and "not on this machine" in w for w in why)

    result = CliRunner().invoke(cli, ["report", "compare", str(run.root), str(copy_root),
                                      "--rounds", "3"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "p50 ms b1 (side by side, 3 rounds)" in result.output
    assert "rebuilt after its report" in result.output
