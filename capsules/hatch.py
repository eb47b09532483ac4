"""Packaging: a hatchling build hook that puts prebuilt kernels into a package's wheel.

A library keeps its kernel files inside its package and says, in its
``pyproject.toml``::

    [build-system]
    requires = ["hatchling", "pythran-capsules"]
    build-backend = "hatchling.build"

    [tool.hatch.build.targets.wheel.hooks.capsules]
    kernels = ["src/mypkg/kernels.py"]      # files or folders, relative to the project root;
                                            # a module with inline kernels (decorators) too

``python -m build --wheel`` then compiles each kernel file for every CPU
level (:func:`capsules.prebuilt.build_into`) and adds its
``__capsules__/<stem>/`` beside the kernel file in the wheel, which gets a
platform tag (``cp312-cp312-linux_x86_64``) instead of ``py3-none-any``.
Each ``__capsules__`` folder also gets the QUADPACK driver that
``capsules.nquad`` runs (``capsules_quadpack/``), so that integrals run
where the wheel is installed without a compiler.
Optional settings: ``checked = true``, ``jobs = N``.  In the installed
package, ``capsules.load(Path(__file__).with_name("kernels.py"))`` finds the
binaries without pythran or a compiler.

hatchling loads this module through the ``hatch`` entry point only while it
builds, so capsules does not depend on hatchling.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, NoReturn

from hatchling.builders.hooks.plugin.interface import BuildHookInterface
from hatchling.plugin import hookimpl

from .build import kernel_files
from .errors import CapsulesError
from .prebuilt import PREBUILT_DIR, build_into
from .quadpack import driver

TABLE = "[tool.hatch.build.targets.wheel.hooks.capsules]"
# the hook's table, as pyproject.toml may spell it (for the wheel only, or for every target)
_HEADER = re.compile(r"^\s*\[\s*tool\.hatch\.build\.(?:targets\.wheel\.)?hooks\.capsules\s*\]")
DISTRIBUTION = "pythran-capsules"


class CapsulesBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    """Compile the configured kernel files into the wheel as prebuilt, multi-level binaries."""

    PLUGIN_NAME = "capsules"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version == "editable":
            return  # an editable install builds on first load, from the working tree
        try:
            self._check_requirement()
            self._build(build_data)
        except CapsulesError as err:
            self._abort(err)

    def _build(self, build_data: dict[str, Any]) -> None:
        root = Path(self.root)
        files = kernel_files(root / p for p in self._setting("kernels", list, []))
        if not files:
            raise self._error("kernels", "lists no kernel file: name files or folders, relative to the project root "
                              "(kernels = [\"src/mypkg/kernels.py\"])")
        jobs, checked = self._setting("jobs", int, 1), self._setting("checked", bool, False)
        self._staging = Path(tempfile.mkdtemp(prefix="capsules-wheel-"))
        drivers: set[str] = set()
        for number, path in enumerate(files):
            into = self._staging / str(number)
            built = build_into([path], into, jobs=jobs, checked=checked)
            inside = Path(self.build_config.get_distribution_path(path.relative_to(root).as_posix())).parent
            for _result, written in built:  # one per kernel file, or per inline kernel of a module
                target = f"{inside.as_posix()}/{PREBUILT_DIR}/{written.name}"
                build_data["force_include"][str(written)] = target
                self.app.display_info(f"capsules: {path.relative_to(root)} -> {target}")
            folder = f"{inside.as_posix()}/{PREBUILT_DIR}"
            if folder not in drivers:  # one driver per __capsules__ folder
                drivers.add(folder)
                written = driver.build_into(into / f"driver-{len(drivers)}")
                build_data["force_include"][str(written)] = f"{folder}/{written.name}"
        build_data["pure_python"] = False
        build_data["infer_tag"] = True

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        staging = getattr(self, "_staging", None)
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)

    def _abort(self, err: CapsulesError) -> NoReturn:
        """Stop the build with the error as capsules' CLI prints it: a traceback through hatchling would bury it."""
        self.finalize("", {}, "")
        self.app.abort(err.report())
        raise SystemExit(1)  # abort exits; this says so to readers and type checkers

    def _setting(self, name: str, kind: type, default: Any) -> Any:
        value = self.config.get(name, default)
        if isinstance(value, str) and kind is list:
            value = [value]
        wrong = not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool)
        if wrong or (kind is list and not all(isinstance(item, str) for item in value)):
            raise self._error(name, f"must be {_KINDS[kind]}, not {value!r}")
        return value

    def _error(self, name: str, problem: str) -> CapsulesError:
        """An error about the setting ``name``, located at its line of pyproject.toml (or at the table's)."""
        path = Path(self.root) / "pyproject.toml"
        line, text = _setting_line(path, name)
        return CapsulesError(f"{TABLE} {name} {problem}", path=path, line=line, source_line=text)

    def _check_requirement(self) -> None:
        """Warn when the build requirements lack us: an isolated build would fail without saying why."""
        names = {re.sub(r"[-_.]+", "-", r.name).lower() for r in self.metadata.build.requires_complex}
        if DISTRIBUTION not in names:
            self.app.display_warning(
                f"capsules: [build-system] requires does not list {DISTRIBUTION!r}; an isolated build (pip, "
                "python -m build) will fail with 'UnknownPluginError: Unknown build hook: capsules'. Add it: "
                f"requires = [\"hatchling\", \"{DISTRIBUTION}\"]"
            )


_KINDS = {list: "a list of paths", int: "a whole number", bool: "true or false"}


def _setting_line(path: Path, name: str) -> tuple[int | None, str | None]:
    """The line of ``name =`` in the hook's table of ``path``, else the table's own line, else nothing."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None, None
    header = next((i for i, text in enumerate(lines) if _HEADER.match(text)), None)
    if header is None:
        return None, None  # configured elsewhere (hatch.toml)
    for i in range(header + 1, len(lines)):
        if lines[i].lstrip().startswith("["):
            break
        if re.match(rf"\s*{name}\s*=", lines[i]):
            return i + 1, lines[i]
    return header + 1, lines[header]


@hookimpl
def hatch_register_build_hook() -> type[BuildHookInterface]:  # type: ignore[type-arg]
    return CapsulesBuildHook
