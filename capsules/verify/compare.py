"""Verify's comparison: what each side did, and whether the two agree.

Two results agree when both raise, when both report failure (an ndimage
callback's 0), or when every value is within ``ulp`` units in the last
place, NaN matching NaN and a zero matching only a zero of the same sign.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field

from .settings import Settings


@dataclass(frozen=True)
class Outcome:
    """What one side did: its values (a result, a line, coordinates), its success flag, or what it raised.

    A complex integrand's values are its real and imaginary parts (``parts``).
    """

    values: tuple[float, ...] = ()
    ok: bool = True
    error: BaseException | None = field(default=None, compare=False)
    parts: bool = False
    not_called: str = ""  # why the side was not called on this input

    def __str__(self) -> str:
        if self.not_called:
            return f"is not called ({self.not_called})"
        if self.error is not None:
            return f"raises {type(self.error).__name__}: {self.error}"
        if not self.ok:
            return "reports failure (returns 0)"
        if self.parts:
            return f"gives {complex(*self.values)!r}"
        shown = ", ".join(number(v) for v in self.values)
        return f"gives {shown}" if len(self.values) == 1 else f"gives [{shown}]"


def agree(compiled: Outcome, python: Outcome, settings: Settings) -> bool:
    """Whether two outcomes agree: both raise, both fail, or every value is :func:`close`."""
    if compiled.not_called or python.not_called:
        return False
    if compiled.error is not None or python.error is not None:
        return compiled.error is not None and python.error is not None
    if not (compiled.ok and python.ok):
        return compiled.ok == python.ok
    return len(compiled.values) == len(python.values) and all(
        close(a, b, settings) for a, b in zip(compiled.values, python.values)
    )


def close(a: float, b: float, settings: Settings) -> bool:
    """``a`` and ``b`` within ``ulp`` units in the last place (or ``atol``).

    NaN matches NaN, an infinity the same infinity, a zero a zero of its sign.
    """
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if a == 0.0 and b == 0.0:
        return settings.any_zero or math.copysign(1.0, a) == math.copysign(1.0, b)
    if math.isinf(a) or math.isinf(b):  # an overflow is no rounding error, however near the largest float
        return a == b
    return abs(_ordinal(a) - _ordinal(b)) <= settings.ulp or abs(a - b) <= settings.atol


def _ordinal(x: float) -> int:
    """Floats in order as integers: neighbours differ by 1 (both zeros are 0)."""
    bits = struct.unpack("<q", struct.pack("<d", x))[0]
    return bits if bits >= 0 else -(bits & 0x7FFF_FFFF_FFFF_FFFF)


def number(x: float) -> str:
    """A value as a report shows it: its repr, a fractional numpy float's as a Python float's."""
    return repr(float(x)) if isinstance(x, float) and not float(x).is_integer() else repr(x)
