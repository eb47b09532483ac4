"""Verify's report: each kernel's verdict, in words for a terminal and as JSON for a CI."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .causes import CAUSES
from .compare import number
from .inputs import Case
from .layout import Layout
from .settings import Settings


@dataclass(frozen=True)
class Divergence:
    """The smallest input found at which a kernel's compiled and Python results differ."""

    inputs: str
    compiled: str
    python: str
    cause: str  # a key of CAUSES
    detail: str = ""  # where in the kernel's source, when known

    @property
    def explanation(self) -> str:
        """The cause in words, and the line of the kernel it comes from when known."""
        return CAUSES[self.cause] + (f" ({self.detail})" if self.detail else "")


@dataclass(frozen=True)
class KernelResult:
    """One kernel's verdict."""

    path: str
    line: int
    kernel: str
    role: str
    settings: Settings
    divergence: Divergence | None = None

    @property
    def agrees(self) -> bool:
        """Whether no input was found at which the two sides differ."""
        return self.divergence is None

    def message(self) -> str:
        """``path:line: kernel: compiled gives A, Python gives B for inputs ...``, or that it agrees."""
        where = f"{self.path}:{self.line}: {self.kernel}"
        if self.divergence is None:
            domains = ", ".join(f"{n}={_bounds(lo, hi)}" for n, (lo, hi) in self.settings.domains)
            within = f" within {domains}" if domains else ""
            atol = f", atol {self.settings.atol:g}" if self.settings.atol else ""
            return (f"{where}: agrees on {self.settings.examples} examples{within} "
                    f"(ulp {self.settings.ulp}{atol}, seed {self.settings.seed})")
        d = self.divergence
        return (f"{where}: compiled {d.compiled}, Python {d.python} for inputs {d.inputs}\n"
                f"    cause: {d.explanation}")

    def to_json(self) -> dict[str, Any]:
        """This result as JSON data: where, its settings, and its divergence if any."""
        data: dict[str, Any] = {
            "path": self.path, "line": self.line, "kernel": self.kernel, "role": self.role,
            "agrees": self.agrees, "examples": self.settings.examples, "seed": self.settings.seed,
            "ulp": self.settings.ulp, "atol": self.settings.atol, "any_zero": self.settings.any_zero, "domains": {n: list(b) for n, b in self.settings.domains},
        }
        if self.divergence is not None:
            d = self.divergence
            data["divergence"] = {"inputs": d.inputs, "compiled": d.compiled, "python": d.python,
                                  "cause": d.cause, "explanation": d.explanation, "message": self.message()}
        return data


@dataclass(frozen=True)
class Report:
    """What :func:`capsules.verify` found, one :class:`KernelResult` per kernel."""

    results: tuple[KernelResult, ...]

    @property
    def agrees(self) -> bool:
        """Whether every kernel agrees with its Python."""
        return all(r.agrees for r in self.results)

    @property
    def divergences(self) -> tuple[KernelResult, ...]:
        """The results of the kernels that diverge."""
        return tuple(r for r in self.results if not r.agrees)

    def __str__(self) -> str:
        return "\n".join(r.message() for r in self.results)

    def to_json(self) -> dict[str, Any]:
        """The report as JSON data: ``{"agrees": bool, "kernels": [...]}``, for a CI to read."""
        return {"version": 1, "agrees": self.agrees, "kernels": [r.to_json() for r in self.results]}

    def write_json(self, path: str | Path) -> None:
        """Write :meth:`to_json` to ``path``."""
        Path(path).write_text(json.dumps(self.to_json(), indent=2) + "\n")


def _bounds(low: float, high: float) -> str:
    """``0:1`` for a range, ``3`` for one value, as a '#capsules verify' comment writes them."""
    shown = [repr(int(x)) if float(x).is_integer() and abs(x) < 1e16 else repr(float(x)) for x in (low, high)]
    return shown[0] if low == high else ":".join(shown)


def describe(layout: Layout, case: Case) -> str:
    """The input as the user's function sees it: ``x=0.0, y=1.5; a=2.0``."""
    if layout.natural:
        given = dict(zip(layout.kernel.parameters, case.data))
        parameters = ", ".join(f"{p}={_value(v)}" for p, v in given.items())
        named = _described(layout, case, layout.spec.provided)
        return f"{named}; {parameters}" if parameters else named
    shown = _described(layout, case, layout.spec.params)
    if layout.reads_user_data:
        shown += f", {layout.user_data_name}=[{', '.join(number(v) for v in case.data)}]"
    return shown


def _described(layout: Layout, case: Case, names: Sequence[str]) -> str:
    """The values, windows, lines or coordinates of ``case``, under the kernel's own argument names."""
    values = ", ".join(number(v) for v in case.values)
    if layout.kind == "mapping":
        rank = "" if layout.natural else f", {names[2]}={names[3]}={len(case.coords)}"
        return f"{names[0]}={list(case.coords)}{rank}"
    if layout.natural and layout.kind == "integrand":
        return ", ".join(f"{n}={number(v)}" for n, v in zip(names, case.values))
    if layout.kind == "quad":
        return f"{names[0]}={values}"
    if layout.kind == "integrand":
        return f"{names[0]}={len(case.values)}, {names[1]}=[{values}]"
    if layout.natural:
        count = f", len({names[1]})={case.count}" if layout.kind == "filter1d" else ""
        return f"{names[0]}=[{values}]{count}"
    count = f", {names[3]}={case.count}" if layout.kind == "filter1d" else ""
    return f"{names[0]}=[{values}], {names[1]}={len(case.values)}{count}"


def _value(x: Any) -> str:
    """A parameter's value as the user would write it: a number, or an array as nested lists."""
    if isinstance(x, np.ndarray):
        return repr(x.tolist())
    return number(x)
