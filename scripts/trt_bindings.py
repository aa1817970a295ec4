"""The real TensorRT Python bindings of every release the project supports, importable here.

NVIDIA publishes each release's Python bindings on PyPI as a small wheel (``tensorrt-bindings``,
``tensorrt-cu12-bindings``) holding ``tensorrt_bindings/tensorrt.so``. That module links against
``libnvinfer.so.N``, ``libnvonnxparser.so.N`` and ``libnvinfer_plugin.so.N`` (8.6 also
``libnvparsers.so.8``) but imports only a dozen factory symbols from them. This script:

1. installs each release's wheel (``pip install --no-deps --target``) into a cache folder
   (``$TRT_BINDINGS_DIR``, default ``.trt-bindings/`` in the repository, which git ignores);
2. builds stand-in libraries with the machine's C compiler: one per library the module names,
   with its SONAME, together exporting exactly the symbols ``nm -D --undefined-only`` lists
   (each returns null/0, so no engine can be built: this checks the API, not a GPU);
3. imports each release in its own process and writes its *surface*: every class, enum member,
   method (with its pybind signatures), property (with its type and whether it can be set) and
   function, to ``surface-<version>.json``.

The conformance tests (tests/targets/test_tensorrt_conformance.py) read those surfaces. Run it
once (``python scripts/trt_bindings.py``); a second run only checks the cache. Needs PyPI the
first time, gcc and binutils' ``nm``/``readelf``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# (label, pip requirement): the releases the TensorRT code claims (JetPack 6.0 ships 8.6.2,
# JetPack 6.1/6.2 10.3; 10.13 is the stubs' release; 11.4 the newest).
RELEASES = (
    ("8.6", "tensorrt-bindings==8.6.1"),
    ("10.3", "tensorrt-cu12-bindings==10.3.0"),
    ("10.13", "tensorrt-cu12-bindings==10.13.3.9.post1"),
    ("11.4", "tensorrt-cu12-bindings==11.4.0.106"),
)
SURFACE_VERSION = 2
# Undefined symbols the C/C++ runtime provides, not TensorRT's libraries.
_RUNTIME = re.compile(r"^(_ITM_|__gmon_start__|__pthread_key_create|_ZGTt|dl(open|sym|close)$|"
                      r"pthread_once$|Py|_Py)")  # fmt: skip


def cache_dir() -> Path:
    return Path(os.environ.get("TRT_BINDINGS_DIR", ROOT / ".trt-bindings")).resolve()


def _run(cmd: list[str], **kw: object) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, **kw)  # type: ignore[call-overload]
    if done.returncode != 0:
        sys.exit(f"trt_bindings: {' '.join(cmd)} failed:\n{done.stdout}{done.stderr}")
    return str(done.stdout)


def install(label: str, requirement: str, root: Path) -> Path:
    """The folder holding ``tensorrt_bindings`` for a release, installed if it is not there."""
    dest = root / label / "site"
    marker = dest / ".requirement"
    if marker.exists() and marker.read_text() == requirement:
        return dest
    _run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-compile",
          "--only-binary=:all:", "--upgrade", "--target", str(dest),
          requirement])  # fmt: skip
    marker.write_text(requirement)
    return dest


def stand_in_libraries(site: Path, out: Path) -> Path:
    """Libraries named as the module's NEEDED TensorRT entries, exporting what it imports."""
    so = site / "tensorrt_bindings" / "tensorrt.so"
    needed = re.findall(
        r"\(NEEDED\)\s+Shared library: \[(lib\S+)\]", _run(["readelf", "-d", str(so)])
    )
    ours = [n for n in needed if n.startswith(("libnvinfer", "libnvonnxparser", "libnvparsers"))]
    lines = _run(["nm", "-D", "--undefined-only", str(so)]).splitlines()
    names = {line.split()[-1] for line in lines if line.split()}
    symbols = sorted(n for n in names if "@" not in n)
    symbols = [s for s in symbols if not _RUNTIME.match(s)]
    if all((out / name).exists() for name in ours):
        return out
    out.mkdir(parents=True, exist_ok=True)
    source = out / "stand_in.c"
    source.write_text(
        "/* Stand-ins for the TensorRT factories the bindings import: each returns null/0. */\n"
        + "".join(f"void *{s}(void) {{ return 0; }}\n" for s in symbols)
    )
    for i, name in enumerate(ours):
        # The first library carries every symbol; the others exist for the loader's NEEDED list.
        src = source if i == 0 else out / "empty.c"
        if i:
            src.write_text("/* empty: the symbols live in the first stand-in library */\n")
        _run(["gcc", "-shared", "-fPIC", "-o", str(out / name), f"-Wl,-soname,{name}", str(src)])
    return out


# Runs in the child process that imports one release; prints the surface as JSON.
_DUMP = r"""
import inspect, json, sys
import tensorrt_bindings as trt

def doc_lines(obj):
    doc = getattr(obj, "__doc__", None) or ""
    return doc

def signatures(name, doc):
    # pybind: "name(self: T, a: int = 1) -> R" or "Overloaded function.\n\n1. name(...) -> R"
    out = []
    for line in doc.splitlines():
        line = line.strip()
        line = line.split(". ", 1)[1] if line[:1].isdigit() and ". " in line[:4] else line
        if line.startswith(name + "(") and ")" in line:
            out.append(line)
    return out

def member(cls, attr):
    raw = inspect.getattr_static(cls, attr)
    if isinstance(raw, property):
        getter = (raw.fget.__doc__ or "") if raw.fget else ""
        m = getter.strip().split("->")
        return {"kind": "property", "type": m[-1].strip() if len(m) > 1 else "",
                "settable": raw.fset is not None}
    if isinstance(raw, staticmethod):
        fn = raw.__func__
        return {"kind": "staticmethod", "signatures": signatures(attr, doc_lines(fn))}
    value = getattr(cls, attr)
    if callable(value) and type(value).__name__ in ("instancemethod", "builtin_function_or_method",
                                                  "function", "method", "wrapper_descriptor"):
        return {"kind": "method", "signatures": signatures(attr, doc_lines(value))}
    if isinstance(value, type):
        return {"kind": "class", "name": value.__qualname__}
    return {"kind": "value", "type": type(value).__qualname__, "repr": repr(value)[:80],
            "int": int(value) if hasattr(type(value), "__members__") else None}

classes, functions, values = {}, {}, {}
for name in dir(trt):
    if name.startswith("__") and name != "__version__":
        continue
    obj = getattr(trt, name)
    if isinstance(obj, type):
        entry = {"qualname": obj.__qualname__, "bases": [b.__name__ for b in obj.__mro__[1:]],
                 "enum": hasattr(obj, "__members__"), "members": {}}
        if entry["enum"]:
            entry["values"] = {k: int(v) for k, v in obj.__members__.items()}
        for attr in dir(obj):
            if attr.startswith("__") and attr not in ("__init__", "__bytes__", "__len__",
                                                      "__getitem__", "__buffer__"):
                continue
            try:
                entry["members"][attr] = member(obj, attr)
            except Exception as exc:  # a property whose getter needs an instance
                entry["members"][attr] = {"kind": "unknown", "error": str(exc)[:80]}
        if "__init__" in entry["members"]:
            entry["members"]["__init__"]["signatures"] = signatures(
                "__init__", doc_lines(obj.__init__))
        classes[name] = entry
    elif callable(obj):
        functions[name] = {"signatures": signatures(name, doc_lines(obj))}
    else:
        values[name] = repr(obj)[:80]
print(json.dumps({"version": trt.__version__, "classes": classes, "functions": functions,
                  "values": values}, sort_keys=True))
"""


def surface(label: str, site: Path, libs: Path, out: Path) -> Path:
    path = out / f"surface-{label}.json"
    if path.exists():
        try:
            if json.loads(path.read_text()).get("surface_version") == SURFACE_VERSION:
                return path
        except ValueError:
            pass
    env = {**os.environ, "LD_LIBRARY_PATH": str(libs), "PYTHONPATH": str(site)}
    text = _run([sys.executable, "-c", _DUMP], env=env, cwd=str(out))
    data = json.loads(text)
    data["surface_version"] = SURFACE_VERSION
    data["label"] = label
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    tmp.replace(path)
    return path


def ensure() -> dict[str, Path]:
    """Every release's surface file (installing and dumping what is missing)."""
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    out = {}
    for label, requirement in RELEASES:
        site = install(label, requirement, root)
        libs = stand_in_libraries(site, root / label / "libs")
        out[label] = surface(label, site, libs, root)
    return out


def main() -> None:
    for label, path in ensure().items():
        data = json.loads(path.read_text())
        print(
            f"tensorrt {label}: bindings {data['version']}, {len(data['classes'])} classes ({path})"
        )


if __name__ == "__main__":
    main()
