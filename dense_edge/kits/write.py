"""Device build kits: ``RUN/kits/<target>-<precision>/``, for targets that cannot build here.

A kit holds the verified source model (the Q/DQ model for int8, checked against the target's
profile), what the target writes for building on the device (for TensorRT: the float ONNX,
``trtexec.sh``, ``polygraphy.sh``, ``build_plan.json``, ``validate.sh``), an evaluation set from
the validation split and a manifest with the sha256 of every file. The run keeps a seal of the
kit beside it (``RUN/kits/<kit>.seal.json``, :mod:`dense_edge.kits.seal`).
"""

from __future__ import annotations

from pathlib import Path

from dense_edge import bundle
from dense_edge.calibrate.checker import check_onnx
from dense_edge.compile.stage import source_model, target_settings
from dense_edge.export import metadata
from dense_edge.fileio import read_json, write_json
from dense_edge.kits import evalset, seal
from dense_edge.manifest import model_fields, new_manifest
from dense_edge.recipe import Recipe
from dense_edge.rundir import RunDir
from dense_edge.stages import atomic_dir
from dense_edge.targets import registry


def kit_dir(run: RunDir, target: str, precision: str) -> Path:
    return run.root / "kits" / f"{target}-{precision}"


def write_device_kit(recipe: Recipe, run: RunDir, target: str, precision: str) -> Path:
    """Write (replace) the kit for ``target`` at ``precision``; its folder."""
    t = registry.get(target)
    registry.check_precision(target, precision)
    source = source_model(recipe, run, target, precision)
    if precision == "int8":
        import onnx

        report = check_onnx(onnx.load(str(source)), t.profile, str(source))
        if not report.ok:
            raise RuntimeError(
                f"the {t.profile} Q/DQ model fails its checker: {report.violations[:3]}"
            )
    manifest = metadata.read(source)
    out = kit_dir(run, target, precision)
    model_manifest = read_json(run.model / "manifest.json")
    with atomic_dir(out) as tmp:
        written = t.write_kit(tmp, source, run.onnx_model, precision, manifest["input_shape"],
                              target_settings(recipe, target))  # fmt: skip
        eval_files, evaluation = evalset.write(tmp, recipe, run)
        write_json(
            tmp / bundle.MANIFEST,
            new_manifest(
                t.kit_kind,
                **{
                    **model_fields(manifest),
                    "target": target,
                    "precision": precision,
                    **written.fields,
                    "evaluation": evaluation,
                    "run": {
                        "dir": str(run.root.resolve()),
                        "weights_sha256": model_manifest.get("weights", {}).get("sha256"),
                    },
                    "files": bundle.file_table(tmp, written.files + eval_files),
                },
            ),
        )
    # The run's own record of what it wrote, outside the kit: report merge checks device
    # reports against it (the kit's manifest travels with the kit and can be rewritten).
    seal.write(out)
    return out
