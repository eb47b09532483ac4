"""The compiler process: ``python -I .../capsules/child/__main__.py [--serve] PYTHRAN_DIR`` (see __init__.py)."""

from __future__ import annotations

import importlib.util
import os
import sys


def _load_folder() -> None:
    """This folder as the package ``capsules_child``, by its path: nothing on ``sys.path`` can stand in for it."""
    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location(
        "capsules_child", os.path.join(here, "__init__.py"), submodule_search_locations=[here]
    )
    assert spec is not None and spec.loader is not None
    package = importlib.util.module_from_spec(spec)
    sys.modules["capsules_child"] = package
    spec.loader.exec_module(package)


_load_folder()
from capsules_child.job import handle, import_pythran as _import_pythran  # noqa: E402
from capsules_child.server import serve  # noqa: E402


def main(argv: list[str]) -> int:
    """One build: its request on stdin.  ``--serve`` first: a server of builds, one forked process each."""
    if argv[:1] == ["--serve"]:
        return serve(argv[1:])
    sys.path += argv  # where pythran lives, after the standard library
    imported = _import_pythran()
    text = sys.stdin.read()
    if not text:
        return 0  # the parent stopped before sending a request
    return handle(text, imported)


if __name__ == "__main__":
    status = main(sys.argv[1:])
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:  # the log is on a full disk: exit with main's status, not the 120 Python's exit would give
        pass
    # The parent waits for this exit.  Everything is written and flushed, and
    # nothing here needs finalizing: skip the interpreter's teardown, which
    # frees pythran's tables one object at a time.
    os._exit(status)
