"""Sphinx configuration of the capsules documentation.

Build it with ``tox -e docs``, or in an environment that has ``.[docs]``
installed: ``sphinx-build -W --keep-going -n -E -b html docs docs/_build/html``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx

import capsules

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent

project = "capsules"
author = "the capsules developers"
copyright = "the capsules developers"
version = release = capsules.__version__

extensions = [
    "myst_nb",  # Markdown pages (MyST) and executed notebooks
    "sphinx.ext.autodoc",
    "numpydoc",
]
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "**.ipynb_checkpoints"]

html_theme = "furo"
html_title = f"capsules {release}"

# -- Notebooks ----------------------------------------------------------------
# Sphinx reads only files under docs/, so the quickstart notebook, which lives
# in examples/ beside the scripts, is copied here on every build (the copy is
# ignored by git).  It runs with docs/ as its working directory: a sibling of
# examples/, so relative paths such as ../kernels/ mean the same in both.
NOTEBOOKS = {ROOT / "examples" / "quickstart.ipynb": DOCS / "quickstart.ipynb"}
for _source, _copy in NOTEBOOKS.items():
    if not _copy.exists() or _copy.read_bytes() != _source.read_bytes():
        shutil.copyfile(_source, _copy)

# every build runs the notebook from scratch: the page shows what this
# checkout prints, and a cell that raises fails the build
nb_execution_mode = "force"
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_execution_timeout = 600  # seconds per cell: a cold cache compiles kernels
nb_merge_streams = True

myst_enable_extensions = ["colon_fence", "deflist", "dollarmath"]
myst_heading_anchors = 3

# -- API reference ------------------------------------------------------------
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
numpydoc_show_class_members = False  # api.rst lists the members it documents
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()

# Cross-references to the standard library, NumPy and SciPy stay plain text:
# linking them (intersphinx) downloads their inventories on every build,
# which CI cannot do, and nitpicky mode (-n) would report each as missing.
# Anything of our own that does not resolve is still an error.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(pathlib|collections\.abc|typing|types|ctypes|concurrent\.futures|os)\..*"),
    (r"py:.*", r"(np|numpy|scipy)(\..*)?"),
    (r"py:class", r"(Path|Any|Iterable|Iterator|Mapping|Callable|ModuleType|LowLevelCallable)"),
    (r"py:class", r"module"),  # types.ModuleType, as Sphinx before 7.3 names it
    (r"py:class", r"(capsules\.decorators\.)?F"),  # the decorators' type variable
    (r"py:class", r"capsules\.inline\..*"),  # the lifting stage's values, internal
    (r"py:class", r"capsules\.load\.KernelCallable"),  # what lowlevel() returns: a LowLevelCallable
]

# Kernel and KernelModule are made by capsules.load, BuildResult by
# capsules.build and the hook by hatchling: their constructors take internal
# objects and are no part of the API, so their signatures are not shown.
NO_SIGNATURE = {
    "capsules.Kernel",
    "capsules.KernelModule",
    "capsules.BuildResult",
    "capsules.hatch.CapsulesBuildHook",
}


def _hide_constructor(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, signature: str | None, return_annotation: str | None
) -> tuple[str, None] | None:
    if what == "class" and name in NO_SIGNATURE:
        return "", None
    return None


def setup(app: Sphinx) -> None:
    app.connect("autodoc-process-signature", _hide_constructor)
