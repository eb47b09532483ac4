"""Verify's settings: how each kernel is checked, from the options and the kernel's ``#capsules verify`` comments.

A kernel narrows its inputs or widens its tolerance with a comment above
its export comment (or decorator), which the verifier reads::

    #capsules verify x=0:1 user_data=0:10 ulp=8
    #pythran export capsule f(int32, float64*, float64*)
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..errors import CapsulesError, SpecError


EXAMPLES = 100
ULP = 4
# How SciPy's callers shape their calls, by default: (lowest, highest)
SHAPES: dict[str, tuple[int, int]] = {
    "variables": (1, 3),  # a raw integrand's n (quad passes 1; nquad 1 or more)
    "filter_size": (1, 9),  # a generic_filter window (a generic_filter1d filter: FILTER1D_SIZE)
    "output_length": (1, 8),  # a generic_filter1d output line
    "rank": (1, 3),  # a geometric_transform's coordinates
}
_VERIFY = re.compile(r"^\s*#\s*capsules\s+verify\b(.*)$")
# lines that start a kernel: a verify comment applies to the first one below it
_KERNEL_START = re.compile(r"^\s*(#\s*pythran\s+export\b|#\s*capsules\s+(?!verify\b)\w|@)")
_OPTION = re.compile(r"^(len\(\w+\)|\w+(?:\[\d+\])?)=([^:]+)(?::(.+))?$")


@dataclass(frozen=True)
class Settings:
    """How one kernel is checked: examples, seed, tolerance and the domains of its inputs.

    ``domains`` maps an argument's or parameter's name (``x``, ``a``,
    ``user_data``, ``user_data[0]``), a shape (``variables``,
    ``filter_size``, ``output_length``, ``rank``) or ``len(user_data)`` to
    the closed range ``(low, high)`` its values are drawn from.
    ``any_zero``: a zero matches a zero of either sign (for a kernel that
    picks one of equal values, such as a median).  ``atol``: values this
    close agree whatever their ulp (for a function whose relative error
    grows near its zeros).
    """

    examples: int = EXAMPLES
    seed: int = 0
    ulp: int = ULP
    domains: tuple[tuple[str, tuple[float, float]], ...] = ()
    any_zero: bool = False
    atol: float = 0.0

    def __post_init__(self) -> None:
        if self.examples < 1:
            raise CapsulesError(f"examples must be at least 1, not {self.examples}")
        if self.ulp < 0:
            raise CapsulesError(f"ulp must be 0 or more, not {self.ulp}")
        for name, (low, high) in self.domains:
            if not low <= high:
                raise CapsulesError(f"domain {name}={low:g}:{high:g} is empty")

    def domain(self, name: str, default: tuple[float, float] | None = None) -> tuple[float, float] | None:
        """The range of ``name``'s values, or ``default``."""
        return dict(self.domains).get(name, default)

    def with_domains(self, domains: Mapping[str, tuple[float, float]]) -> Settings:
        """These settings, ``domains`` replacing those of the same names."""
        merged = dict(self.domains) | dict(domains)
        return replace(self, domains=tuple(sorted(merged.items())))


def parse_domain(text: str) -> tuple[str, tuple[float, float]]:
    """``"x=0:1"`` -> ``("x", (0.0, 1.0))``; ``"len(user_data)=6"`` -> ``("len(user_data)", (6.0, 6.0))``.

    Raises
    ------
    CapsulesError
        The text is not ``NAME=LOW:HIGH`` or ``NAME=VALUE`` with numbers, ``LOW <= HIGH``.
    """
    found = _OPTION.match(text.strip())
    try:
        low = float(found.group(2)) if found else math.nan
        high = float(found.group(3)) if found and found.group(3) is not None else low
    except ValueError:
        low = high = math.nan
    if found is None or not low <= high:
        raise CapsulesError(f"domain {text!r}: expected NAME=LOW:HIGH (numbers, LOW <= HIGH), e.g. x=0:1")
    return found.group(1), (low, high)


def comment_settings(
    text: str, path: str, line: int, settings: Settings, names: Collection[str] | None = None
) -> Settings:
    """``settings`` with the kernel's own ``#capsules verify`` comments applied: those above ``line``.

    A verify comment applies to the first kernel below it (an export
    comment, a ``#capsules`` role comment or a decorator), and wins over the
    command line's options for that kernel.  ``names``: those a domain may
    name (the kernel's arguments, parameters and shapes), when known.

    Raises
    ------
    SpecError
        A verify comment is malformed or names what the kernel does not
        have (located at its line).
    """
    lines = text.splitlines()
    mine: list[int] = []
    for number in range(line - 1, 0, -1):
        source = lines[number - 1] if number <= len(lines) else ""
        if _VERIFY.match(source):
            mine.append(number)
        elif _KERNEL_START.match(source):
            break
    for number in reversed(mine):
        settings = _apply(_VERIFY.match(lines[number - 1]).group(1), settings, names,
                          {"path": path, "line": number, "source_line": lines[number - 1].rstrip()})
    return settings


def _tolerance(word: str, settings: Settings, where: dict[str, Any]) -> Settings:
    name, _, value = word.partition("=")
    try:
        number = int(value) if name == "ulp" else float(value)
        if number >= 0:
            return replace(settings, **{name: number})
    except ValueError:
        pass
    kind = "a whole number" if name == "ulp" else "a number"
    raise SpecError(f"'{word}': {name} takes {kind}, 0 or more", **where)


def _apply(options: str, settings: Settings, names: Collection[str] | None, where: dict[str, Any]) -> Settings:
    domains: dict[str, tuple[float, float]] = {}
    for word in options.split():
        if word == "domain":  # "#capsules verify domain x=0:1" reads better to some
            continue
        if word == "any-zero":
            settings = replace(settings, any_zero=True)
            continue
        if word.startswith(("ulp=", "atol=")):
            settings = _tolerance(word, settings, where)
            continue
        try:
            name, bounds = parse_domain(word)
        except CapsulesError as err:
            raise SpecError(f"'#capsules verify': {err.message}", **where) from None
        if names is not None and _base(name) not in names:
            raise SpecError(f"'#capsules verify': the kernel below has no '{_base(name)}' (a domain may name "
                            f"{', '.join(names)})", **where)
        domains[name] = bounds
    return settings.with_domains(domains)


def _base(name: str) -> str:
    """The argument a domain is about: ``user_data`` for ``user_data[2]`` and ``len(user_data)``."""
    found = re.match(r"^len\((\w+)\)$", name) or re.match(r"^(\w+)\[\d+\]$", name)
    return found.group(1) if found else name
