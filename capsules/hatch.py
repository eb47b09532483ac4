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

import shutil
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface
from hatchling.plugin import hookimpl

from .build import kernel_files
from .errors import CapsulesError
from .prebuilt import PREBUILT_DIR, build_into
from .quadpack import driver


class CapsulesBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    """Compile the configured kernel files into the wheel as prebuilt, multi-level binaries."""

    PLUGIN_NAME = "capsules"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version == "editable":
            return  # an editable install builds on first load, from the working tree
        root = Path(self.root)
        files = kernel_files(root / p for p in self._setting("kernels", list))
        if not files:
            raise CapsulesError("[tool.hatch.build.targets.wheel.hooks.capsules] kernels lists no kernel file")
        self._staging = Path(tempfile.mkdtemp(prefix="capsules-wheel-"))
        drivers: set[str] = set()
        for number, path in enumerate(files):
            into = self._staging / str(number)
            built = build_into([path], into, jobs=int(self.config.get("jobs", 1)),
                               checked=bool(self.config.get("checked")))
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

    def _setting(self, name: str, kind: type) -> Any:
        value = self.config.get(name, kind())
        if isinstance(value, str) and kind is list:
            value = [value]
        if not isinstance(value, kind):
            raise CapsulesError(f"[tool.hatch.build.targets.wheel.hooks.capsules] {name} must be a {kind.__name__}")
        return value


@hookimpl
def hatch_register_build_hook() -> type[BuildHookInterface]:  # type: ignore[type-arg]
    return CapsulesBuildHook
