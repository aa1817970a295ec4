"""Make the installed tensorrt-stubs usable by mypy, in ./.typings (not committed).

tensorrt-stubs (10.13) ships ``tensorrt/__init__.pyi`` without a ``py.typed`` marker, so mypy
does not pick it up from site-packages, and a few generated signatures are not valid Python (a
parameter named ``in``; a parameter without a default after ones with defaults; an import of
``tensorrt_libs``), and its ``__init__.pyi`` imports names without re-exporting them. This
copies the stubs into ``.typings/`` (which pyproject's mypy_path names)
and repairs exactly those lines. Exits non-zero if tensorrt-stubs is not installed.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / ".typings"


def _site_packages() -> Path:
    spec = importlib.util.find_spec("tensorrt_stubs")
    if spec is None or spec.origin is None:
        sys.exit(
            "tensorrt-stubs is not installed: pip install --no-deps tensorrt-stubs==10.13.0.35.1"
        )
    return Path(spec.origin).parent.parent


def _split_params(params: str) -> list[str]:
    out, depth, cur = [], 0, ""
    for ch in params:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur)
    return out


def _fix_def(line: str) -> str:
    m = re.match(r"^(\s*def \w+\()(.*)(\)\s*->.*)$", line)
    if not m:
        return line
    params = _split_params(m.group(2))
    fixed, seen_default = [], False
    for p in params:
        p = re.sub(r"^(\s*)in:", r"\1in_:", p)
        bare = p.strip()
        if "=" in bare:
            seen_default = True
        elif seen_default and bare and not bare.startswith("*"):
            p = p + " = ..."
        fixed.append(p)
    return m.group(1) + ",".join(fixed) + m.group(3)


def main() -> None:
    site = _site_packages()
    if OUT.exists():
        shutil.rmtree(OUT)
    for package in ("tensorrt", "tensorrt_bindings"):
        src = site / package
        for pyi in src.rglob("*.pyi"):
            dest = OUT / package / pyi.relative_to(src)
            dest.parent.mkdir(parents=True, exist_ok=True)
            lines = pyi.read_text(encoding="utf-8").splitlines()
            lines = [_fix_def(line) for line in lines if "tensorrt_libs" not in line]
            # Stub files re-export only names imported as "X as X".
            lines = [re.sub(r"^from (\S+) import (\w+)$", r"from \1 import \2 as \2", line)
                     for line in lines]  # fmt: skip
            dest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"tensorrt stubs ready for mypy in {OUT}")


if __name__ == "__main__":
    main()
