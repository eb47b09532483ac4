"""The compiler child process: pythran C++ generation, entry points, g++.

Run as ``python -m capsules._compile REQUEST.json``.  Each build runs in its
own process so that parallel builds share no global state (pythran and
setuptools have plenty), and so that everything pythran and g++ print goes
to the build log the parent captures.  The result is written as JSON next to
the request.
"""

from __future__ import annotations

import ctypes
import json
import logging
import sys
import traceback
from pathlib import Path
from typing import Any


def main(argv: list[str]) -> int:
    request = json.loads(Path(argv[0]).read_text())
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s", stream=sys.stderr)
    try:
        result = _compile(request)
    except BaseException as err:  # every failure must reach the parent as data
        result = _failure(err, request)
        traceback.print_exc()
    Path(request["result"]).write_text(json.dumps(result))
    return 0 if result["ok"] else 1


def _compile(request: dict[str, Any]) -> dict[str, Any]:
    import pythran
    from pythran.errors import PythranCompileError
    from pythran.spec import spec_parser

    source = Path(request["source"]).read_text(encoding="utf-8")
    name, outdir = request["module_name"], Path(request["outdir"])
    specs = spec_parser(source)
    module, error_checker = pythran.generate_cxx(name, source, specs, module_dir=request["module_dir"])
    cpp = outdir / f"{name}.cpp"
    cpp.write_text(str(module) + "\n" + request["entries"])
    binary = outdir / (name + request["ext_suffix"])
    try:
        pythran.compile_cxxfile(
            name, str(cpp), output_binary=str(binary), extra_compile_args=request["flags"]
        )
    except PythranCompileError:
        error_checker()  # raises a located PythranTypeError when it can tell why
        raise
    return {"ok": True, "binary": binary.name, "returns": _returns(binary, request["exports_symbol"])}


def _returns(binary: Path, symbol: str) -> dict[str, str]:
    lib = ctypes.PyDLL(str(binary.resolve()))
    fn = getattr(lib, symbol)
    fn.restype = ctypes.py_object
    return {name: kind for name, _capsule, kind in fn()}


def _failure(err: BaseException, request: dict[str, Any]) -> dict[str, Any]:
    from pythran.syntax import PythranSyntaxError

    if isinstance(err, PythranSyntaxError):
        return {
            "ok": False,
            "stage": "pythran",
            "message": str(err.args[0]) if err.args else type(err).__name__,
            "line": err.lineno,
        }
    return {"ok": False, "stage": "compile", "message": f"{type(err).__name__}: {err}", "line": None}


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
