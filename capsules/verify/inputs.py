"""Verify's inputs: the calls Hypothesis generates for each kernel, as SciPy's callers make them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..generate.parameters import ParameterType
from .layout import Layout
from .settings import SHAPES, Settings


FILTER1D_SIZE = (1, 5)
COORDINATES = (0, 65535)  # the output coordinates of an image this size
ARRAY_LENGTH = (1, 6)  # each axis of a natural kernel's array parameter (len(NAME))

# Finite floats a kernel meets at its edges: zeros of both signs, the smallest
# subnormal and normal numbers, the largest finite ones.
SPECIAL_FLOATS = (0.0, -0.0, 1.0, -1.0, 5e-324, -5e-324, 2.2250738585072014e-308, 1e-300, -1e-300,
                  1e300, -1e300, 1.7976931348623157e308, -1.7976931348623157e308)


@dataclass(frozen=True)
class Case:
    """One input, as the role sees it.

    ``values``: the integration point, the window or the input line;
    ``count``: the output line's length; ``coords``: the output
    coordinates; ``data``: a raw kernel's user_data, or a natural kernel's
    parameters (in the order ``lowlevel`` takes them): a float, an int or
    a numpy array each, as its type declares.
    """

    values: tuple[float, ...] = ()
    count: int = 0
    coords: tuple[int, ...] = ()
    data: tuple[Any, ...] = ()


def cases(layout: Layout, settings: Settings) -> Any:
    """A Hypothesis strategy of the inputs this kernel's role is called with."""
    from hypothesis import strategies as st

    data = _data(layout, settings)
    if layout.kind in ("quad", "integrand"):
        if layout.natural:
            names = layout.spec.provided
            return st.builds(Case, values=st.tuples(*(_floats(settings.domain(n)) for n in names)), data=data)
        low, high = (1, 1) if layout.kind == "quad" else _shape(settings, "variables")
        points = st.integers(low, high).flatmap(
            lambda n: st.lists(_floats(settings.domain(layout.values_name())), min_size=n, max_size=n))
        return st.builds(Case, values=points.map(tuple), data=data)
    if layout.kind == "filter":
        low, high = _shape(settings, "filter_size")
        window = st.lists(_floats(settings.domain(layout.values_name())), min_size=max(low, 1), max_size=high)
        return st.builds(Case, values=window.map(tuple), data=data)
    if layout.kind == "filter1d":
        return _lines(layout, settings, data)
    low, high = _shape(settings, "rank")
    coordinate = st.integers(*_int_range(settings.domain(layout.values_name(), COORDINATES)))
    coords = st.lists(coordinate, min_size=max(low, 1), max_size=high)
    return st.builds(Case, coords=coords.map(tuple), data=data)


def _lines(layout: Layout, settings: Settings, data: Any) -> Any:
    from hypothesis import strategies as st

    sizes = st.integers(*_int_range(settings.domain("filter_size", FILTER1D_SIZE), low=1))
    lengths = st.integers(*_int_range(settings.domain("output_length", SHAPES["output_length"]), low=1))
    value = _floats(settings.domain(layout.values_name()))

    def line(shape: tuple[int, int]) -> Any:
        size, count = shape
        values = st.lists(value, min_size=count + size - 1, max_size=count + size - 1)
        return st.builds(Case, values=values.map(tuple), count=st.just(count), data=data)

    return st.tuples(sizes, lengths).flatmap(line)


def _data(layout: Layout, settings: Settings) -> Any:
    """The strategy of a natural kernel's parameters, or of a raw kernel's user_data items."""
    from hypothesis import strategies as st

    if layout.natural:
        return st.tuples(*(_parameter(name, kind, settings) for name, kind in layout.types.items()))
    if not layout.reads_user_data:
        return st.just(())
    name = layout.user_data_name
    items = layout.user_data_items
    count = int(settings.domain(f"len({name})", (items, items))[0])
    dtype = np.dtype(layout.kernel.user_data_dtype)
    every = settings.domain(name)
    return st.tuples(*(_items(dtype, settings.domain(f"{name}[{i}]", every)) for i in range(count)))


def _shape(settings: Settings, name: str) -> tuple[int, int]:
    return _int_range(settings.domain(name, SHAPES[name]), low=1)


def _int_range(bounds: tuple[float, float], low: int | None = None) -> tuple[int, int]:
    lo, hi = math.ceil(bounds[0]), math.floor(bounds[1])
    if low is not None:
        lo, hi = max(lo, low), max(hi, low)
    return lo, max(lo, hi)


def _floats(bounds: tuple[float, float] | None) -> Any:
    """Finite floats in ``bounds`` (all of them by default), the special values among them often."""
    from hypothesis import strategies as st

    low, high = bounds if bounds is not None else (-math.inf, math.inf)
    lo = None if math.isinf(low) else low
    hi = None if math.isinf(high) else high
    specials = [x for x in SPECIAL_FLOATS if _signed(low) <= _signed(x) <= _signed(high)]
    floats = st.floats(lo, hi, allow_nan=False, allow_infinity=False)
    # floats first: a divergence shrinks to the simplest float that shows it (710.0 for exp), not to a special
    return st.one_of(floats, st.sampled_from(specials)) if specials else floats


def _signed(x: float) -> tuple[float, float]:
    """``x`` for ordering as Hypothesis bounds floats: -0.0 below 0.0."""
    return x, math.copysign(1.0, x)


def _parameter(name: str, kind: ParameterType, settings: Settings) -> Any:
    """A natural kernel's parameter of type ``kind``: a float, an int or an array, within its domain.

    An array's items are drawn from the domain of its name (``table=0:1``),
    the length of each of its axes from ``len(NAME)`` (:data:`ARRAY_LENGTH`
    by default).
    """
    from hypothesis.extra import numpy as hnp

    dtype = np.dtype(kind.dtype)
    if kind.rank == 0:
        return _items(dtype, settings.domain(name))
    low, high = _int_range(settings.domain(f"len({name})", ARRAY_LENGTH), low=1)
    shapes = hnp.array_shapes(min_dims=kind.rank, max_dims=kind.rank, min_side=low, max_side=high)
    return hnp.arrays(dtype, shapes, elements=_items(dtype, settings.domain(name)))


def _items(dtype: np.dtype, bounds: tuple[float, float] | None) -> Any:
    """user_data items of ``dtype``, in ``bounds``."""
    from hypothesis import strategies as st

    if dtype.kind == "f":
        if dtype.itemsize == 4:
            low, high = bounds if bounds is not None else (-math.inf, math.inf)
            return st.floats(None if math.isinf(low) else low, None if math.isinf(high) else high,
                             allow_nan=False, allow_infinity=False, width=32)
        return _floats(bounds)
    if dtype.kind == "b":
        return st.booleans().map(float)
    info = np.iinfo(dtype)
    low, high = bounds if bounds is not None else (-math.inf, math.inf)
    # an infinite bound has no integer: it stands for the dtype's own
    lo = info.min if math.isinf(low) else max(info.min, math.ceil(low))
    hi = info.max if math.isinf(high) else min(info.max, math.floor(high))
    return st.integers(lo, hi)
