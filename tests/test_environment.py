"""What this machine has decides which of a recipe's precisions are built."""

from __future__ import annotations

from dense_edge.environment import cpu_info, skipped_here
from dense_edge.recipe import load_recipe
from dense_edge.validate.stage import requested_engines
from tests.conftest import REPO

ALL = ["fp32", "bf16", "int8"]


def test_openvino_bf16_is_left_out_on_a_cpu_without_bf16_and_says_why() -> None:
    kept, notes = skipped_here("openvino", ALL, flags=["avx2", "avx512f", "avx512_vnni"])
    assert kept == ["fp32", "int8"]
    assert len(notes) == 1
    assert notes[0].startswith("openvino-bf16 not built: this CPU (")
    assert "avx512_bf16, amx_bf16" in notes[0]


def test_openvino_bf16_is_built_where_the_cpu_has_bf16() -> None:
    for flags in (["avx512_bf16"], ["amx_tile", "amx_bf16"]):
        assert skipped_here("openvino", ALL, flags=flags) == (ALL, [])


def test_targets_that_need_no_instruction_keep_every_precision() -> None:
    assert skipped_here("onnxruntime", ["fp32", "int8"], flags=[]) == (["fp32", "int8"], [])
    assert skipped_here("tensorrt", ["fp16", "int8"], flags=[]) == (["fp16", "int8"], [])


def test_the_quick_start_asks_for_bf16_exactly_where_this_cpu_has_it() -> None:
    recipe = load_recipe(REPO / "recipes" / "digits.yaml")
    names = requested_engines(recipe, None)
    has_bf16 = bool({"avx512_bf16", "amx_bf16"} & set(cpu_info()["flags"]))
    assert ("openvino-bf16" in names) == has_bf16, (names, cpu_info())
    assert {"onnxruntime-fp32", "onnxruntime-int8", "openvino-fp32", "openvino-int8"} <= set(names)
