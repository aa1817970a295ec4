"""The OpenVINO C++ example builds against the pip package's OpenVINO and agrees with Python."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from PIL import Image

from dense_edge import runtime
from tests.conftest import REPO


@pytest.mark.slow
def test_cpp_app_top5_equals_the_python_runtime(validated, tmp_path):
    if not shutil.which("cmake") or not (shutil.which("c++") or shutil.which("g++")):
        pytest.skip("cmake and a C++ compiler are needed to build the example")
    import openvino.utils

    build = tmp_path / "build"
    subprocess.run(
        ["cmake", "-S", str(REPO / "examples" / "openvino_cpp"), "-B", str(build),
         f"-DOpenVINO_DIR={openvino.utils.get_cmake_path()}", "-DCMAKE_BUILD_TYPE=Release"],
        check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run(["cmake", "--build", str(build), "-j2"], check=True, capture_output=True)
    app = build / "dense_edge_openvino"

    from dense_edge.compile.stage import compile_stage
    from dense_edge.data import load_splits
    from dense_edge.rundir import RunDir
    from tests.conftest import digits_recipe

    test = load_splits(digits_recipe()).test
    shutil.copytree(validated[0].root, tmp_path / "run")
    run = RunDir.at(tmp_path / "run")
    for precision in ("int8", "fp32"):  # fp32 also proves the C++ app honours the f32 hint
        engine = compile_stage(digits_recipe(), run, "openvino", precision).path
        with runtime.load(engine) as model:
            for i in range(8):
                image = tmp_path / f"d{i}.pgm"
                Image.fromarray(test.image(i)[:, :, 0]).save(image)
                out = subprocess.run([str(app), str(engine), str(image), "5"], capture_output=True,
                                     text=True, check=True)  # fmt: skip
                cpp = [int(line.split()[0]) for line in out.stdout.strip().splitlines()]
                python = [p.index for p in model.predict(image, top_k=5)]
                assert cpp == python, (precision, i, out.stdout)
