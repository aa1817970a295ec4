"""The device report's schema, defined once in ``kits/device_report.py``: the kit's own validator
(a copy that cannot import dense-edge) writes the same id and version, and the reader refuses
anything else in one line that names the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dense_edge.errors import UserError
from dense_edge.kits import device_report
from dense_edge.targets.tensorrt import device


def test_the_kits_own_validator_writes_the_schema_report_merge_reads():
    assert (device.SCHEMA, device.SCHEMA_VERSION) == (device_report.SCHEMA, device_report.VERSION)
    assert f'"{device_report.FILE}"' in Path(device.__file__).read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "device report not found"),
        ("{not json", "not a readable JSON device report"),
        (json.dumps({"schema": "something/else"}), "not a dense-edge device report"),
        (json.dumps({"schema": device_report.SCHEMA, "schema_version": 99}),
         "device report version 99 is not 1"),
        (json.dumps({"schema": device_report.SCHEMA, "schema_version": device_report.VERSION}),
         "not a valid device report"),
    ],
)  # fmt: skip
def test_the_reader_refuses_what_is_not_a_device_report_in_one_line(tmp_path, content, says):
    path = tmp_path / device_report.FILE
    if content is not None:
        path.write_text(content)
    with pytest.raises(UserError) as caught:
        device_report.load_device_report(path)
    message = str(caught.value)
    assert says in message and str(path) in message and "\n" not in message
