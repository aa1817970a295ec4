"""``dense-edge doctor``: what is installed and what this machine can run."""

from __future__ import annotations

import json

import click


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def doctor(as_json: bool) -> None:
    """Show torch and CUDA, ONNX Runtime providers, OpenVINO devices and TensorRT."""
    from dense_edge import environment as env
    from dense_edge.manifest import library_versions
    from dense_edge.progress import print_table

    info = {
        "cpu": env.cpu_info(),
        "torch": env.torch_status(),
        "onnxruntime": env.onnxruntime_status(),
        "openvino": env.openvino_status(),
        "tensorrt": env.tensorrt_status(),
        "versions": library_versions(),
    }
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    cpu, t, ort, ov, trt = (
        info[k] for k in ("cpu", "torch", "onnxruntime", "openvino", "tensorrt")
    )
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
        [
            "onnxruntime",
            ort.get("version", "not installed"),
            ", ".join(ort.get("providers", [])) or "-",
        ],
    ]
    if ov.get("installed"):
        for dev, props in ov["devices"].items():
            rows.append(
                [
                    f"openvino {dev}",
                    ov["version"].split("-")[0],
                    f"{props.get('full_device_name', '')}; default precision "
                    f"{props.get('inference_precision_hint', '?')}; "
                    f"{', '.join(props.get('optimization_capabilities', []))}",
                ]
            )
    else:
        rows.append(["openvino", "not installed", "pip install 'dense-edge[openvino]'"])
    rows.append(
        [
            "tensorrt",
            trt["version"] or "not installed",
            trt["reason"] or "",
        ]
    )
    rows.append(["nncf", info["versions"].get("nncf") or "not installed", ""])
    print_table("dense-edge doctor", ["component", "version", "details"], rows)
