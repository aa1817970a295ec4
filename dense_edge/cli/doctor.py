"""``dense-edge doctor``: what is installed and what this machine can run."""

from __future__ import annotations

import json

import click

from dense_edge import environment as env
from dense_edge.manifest import library_versions
from dense_edge.progress import print_table
from dense_edge.targets.registry import all_targets


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def doctor(as_json: bool) -> None:
    """Show torch and CUDA, and each target's runtime (ONNX Runtime providers, OpenVINO
    devices, TensorRT)."""

    statuses = {t.name: t.status() for t in all_targets()}
    cpu, t, versions = env.cpu_info(), env.torch_status(), library_versions()
    info = {"cpu": cpu, "torch": t, **{name: s.as_json() for name, s in statuses.items()},
            "versions": versions}  # fmt: skip
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    rows = [
        [
            "CPU",
            f"{cpu['model']} ({cpu['logical_cores']} logical cores)",
            ", ".join(cpu["flags"]) or "-",
        ],
        [
            "torch",
            t.get("version", "not installed"),
            (
                f"CUDA {t.get('cuda_version')}: {t.get('gpu')} (sm {t.get('compute_capability')})"
                if t.get("cuda")
                else "CUDA not available"
            ),
        ],
    ]
    for target in all_targets():
        rows += [list(row) for row in target.doctor_rows(statuses[target.name])]
    rows.append(["nncf", versions.get("nncf") or "not installed", ""])
    print_table("dense-edge doctor", ["component", "version", "details"], rows)
