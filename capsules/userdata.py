"""Stage 6b: user_data, the values a kernel reads beside SciPy's arguments.

``Kernel.lowlevel`` (and ``capsules.gsl``, and an unpickled callable) pass
user_data through here: a natural kernel's named parameters, checked and
packed into one block (:func:`parameters`, :func:`pack`; the entry point
reads it as ``capsules/generate/runtime/parameters.hpp`` says), or a raw
kernel's values (:func:`convert`), copied into a private, read-only array of
the dtype the kernel reads.  A
checked build's copy starts after a header with the number of items
(:func:`held`), laid out as ``capsules/generate/runtime/user_data.hpp`` says.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from .errors import UserDataError
from .generate.parameters import ParameterType, types_of
from .generate.runtime import user_data_header
from .natural import is_real
from .signatures import Signature
from .spec import ExportSpec

# A checked build's values start on a 16-byte boundary, as numpy's own allocations do.
_ALIGNMENT = 16
_WORD = 8  # bytes: the unit of a natural kernel's parameter block


def convert(spec: ExportSpec, sig: Signature, value: Any, *, checked: bool) -> np.ndarray | None:
    """Check and convert user_data to a private, read-only, contiguous array (None: no user_data).

    Raises
    ------
    UserDataError
        The value does not fit what the kernel reads, named at its export.
    """
    slot = sig.form.user_data
    where = spec.where()
    if value is None:
        if slot is not None and spec.reads[slot] is not None:
            raise UserDataError(
                f"'{spec.name}' reads its user_data parameter '{spec.params[slot]}'; pass user_data=...", **where
            )
        return None
    if slot is None:
        raise UserDataError(f"'{spec.name}' ({sig.text}) takes no user_data", **where)
    _refuse_addresses(spec, value)
    data = _as_array(spec, value, np.dtype(sig.user_data_dtype))
    _check_length(spec, slot, data)
    return held(data, checked=checked)


def held(data: np.ndarray, *, checked: bool) -> np.ndarray:
    """user_data as the kernel's build reads it, read-only.

    For a checked build, the values follow a header with their number, which
    the entry point reads to bounds-check the kernel's subscripts of
    user_data; the default build reads the values alone, as SciPy passes them.
    """
    if checked:
        magic, header = user_data_header()
        raw = np.empty(data.nbytes + header + _ALIGNMENT, dtype=np.uint8)
        start = header + (-(raw.ctypes.data + header)) % _ALIGNMENT
        raw[start - header : start].view(np.int64)[:] = (magic, data.size)
        placed = raw[start : start + data.nbytes].view(data.dtype)
        placed[...] = data
        data = placed
    data.flags.writeable = False
    return data


def parameters(spec: ExportSpec, user_data: Any, given: dict[str, Any]) -> np.ndarray | None:
    """A natural kernel's named parameters, checked and packed into one block (see :func:`pack`)."""
    where = spec.where()
    if user_data is not None:
        raise UserDataError(
            f"'{spec.name}' takes its parameters by name ({', '.join(spec.parameters) or 'none'}), not user_data",
            **where,
        )
    missing = [p for p in spec.parameters if p not in given]
    extra = [p for p in given if p not in spec.parameters]
    if missing or extra:
        problems = ([f"missing {', '.join(missing)}"] if missing else []) + (
            [f"unexpected {', '.join(extra)}"] if extra else []
        )
        raise UserDataError(
            f"'{spec.name}' takes parameters ({', '.join(spec.parameters)}): {'; '.join(problems)}"
            + _semicolon_hint(spec, extra),
            **where,
        )
    kinds = types_of(spec.parameter_types, len(spec.parameters))
    values = [_parameter(spec, name, kind, given[name]) for name, kind in zip(spec.parameters, kinds)]
    return pack(values) if spec.parameters else None


def pack(values: list[np.ndarray]) -> np.ndarray:
    """Parameters as one block of 8-byte words, laid out as ``generate/runtime/parameters.hpp`` reads it.

    Word ``k`` is the ``k``-th value where it is a scalar (a float64 or an
    int64), else the word at which the array's record starts: its shape,
    then its items in C order, padded to whole words.  A kernel of float64
    scalars gets a block of its values, as it always did.  The block is
    returned as float64, the dtype of the adapter's user_data.
    """
    records = [v for v in values if v.ndim]
    sizes = [v.ndim + -(-v.nbytes // _WORD) for v in records]
    words = np.zeros(len(values) + sum(sizes), dtype=np.int64)
    start = len(values)
    for k, value in enumerate(values):
        if not value.ndim:
            words[k : k + 1].view(value.dtype)[0] = value
            continue
        words[k] = start
        words[start : start + value.ndim] = value.shape
        items = start + value.ndim
        words[items:].view(np.uint8)[: value.nbytes] = value.reshape(-1).view(np.uint8)
        start = items + -(-value.nbytes // _WORD)
    return words.view(np.float64)


def _parameter(spec: ExportSpec, name: str, kind: ParameterType, value: Any) -> np.ndarray:
    """One parameter as its declared type: a scalar as a 0-D array, an array as a C-contiguous copy."""
    where = spec.where()
    if not kind.unpacked:  # a float64 scalar
        return np.array(_float64(spec, name, value), dtype=np.float64)
    try:
        given = np.asarray(value)
        if given.dtype == object and _integers(given):  # a Python int too large for any dtype of numpy
            raise UserDataError(f"'{spec.name}': parameter {name} ({kind.spelling}) would lose "
                                f"{max(given.reshape(-1).tolist(), key=abs)!r}, which {kind.dtype} cannot hold",
                                **where)
    except (TypeError, ValueError) as err:
        raise UserDataError(f"'{spec.name}': parameter {name} is not an array of numbers ({err})", **where) from None
    expected = "a number" if kind.rank == 0 else f"a {kind.rank}-D array ({kind.spelling})"
    if given.dtype.kind not in "iuf":
        raise UserDataError(
            f"'{spec.name}': parameter {name} must be {expected}, not values of dtype {given.dtype}", **where
        )
    if given.ndim != kind.rank:
        shown = "a scalar" if given.ndim == 0 else f"a {given.ndim}-D array"
        raise UserDataError(f"'{spec.name}': parameter {name} must be {expected}, not {shown}", **where)
    problem = _lossy(given, np.dtype(kind.dtype))
    if problem:
        raise UserDataError(
            f"'{spec.name}': parameter {name} ({kind.spelling}) would lose {problem}; convert it yourself if "
            "that is what you mean",
            **where,
        )
    with np.errstate(invalid="ignore", over="ignore"):  # what would not fit was refused just above
        return np.array(given, dtype=kind.dtype, order="C", copy=True)


def _integers(given: np.ndarray) -> bool:
    """Whether an object array holds Python ints only (numpy's dtypes could not hold one of them)."""
    return all(isinstance(v, int) and not isinstance(v, bool) for v in given.reshape(-1).tolist())


def _float64(spec: ExportSpec, name: str, value: Any) -> float:
    if not is_real(value):
        raise UserDataError(f"'{spec.name}': parameter {name}={value!r} is not a real number", **spec.where())
    if float(value) != value and value == value:  # NaN is a float64 like any other
        raise UserDataError(
            f"'{spec.name}': parameter {name}={value!r} does not fit float64 exactly (it would become "
            f"{float(value)!r})",
            **spec.where(),
        )
    return float(value)


def _lossy(given: np.ndarray, dtype: np.dtype) -> str | None:
    """What converting ``given`` to ``dtype`` would lose, in words, or None: the conversion is exact."""
    flat = given.reshape(-1)
    if dtype.kind == "f":
        if given.dtype.kind == "f":
            return None  # float to float: rounding is what a float parameter means
        large = [v for v in flat[(flat > 2**53) | (flat < -(2**53))].tolist() if float(v) != v]
        return f"the integer {large[0]} (float64 would hold {float(large[0])!r})" if large else None
    info = np.iinfo(dtype)
    if given.dtype.kind == "f":
        finite = flat[np.isfinite(flat)]
        if finite.size < flat.size or np.any(finite != np.floor(finite)):
            value = next(v for v in flat.tolist() if not float(v).is_integer())
            return f"the fraction of {value!r} (it reads integers)"
        # float(info.max) + 1 is the power of two just past the largest integer
        outside = flat[(flat < float(info.min)) | (flat >= float(info.max) + 1)]
    else:
        outside = flat[(flat < info.min) | (flat > info.max)]
    return f"{outside.tolist()[0]!r}, which {dtype} cannot hold" if outside.size else None


def _semicolon_hint(spec: ExportSpec, extra: list[str]) -> str:
    """A hint for a parameter listed among what SciPy provides: the ';' forgotten in the comment."""
    variables = [n for n in spec.provided if n in extra]
    if not variables:
        return ""
    provided = [n for n in spec.provided if n not in variables]
    return (f"; {', '.join(variables)} {'is' if len(variables) == 1 else 'are'} listed before ';', with what SciPy "
            f"provides: did you mean '{spec.name}({', '.join(provided)}; {', '.join(variables)})'?")


def _refuse_addresses(spec: ExportSpec, value: Any) -> None:
    is_int = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if is_int or isinstance(value, (ctypes._SimpleCData, ctypes._Pointer)):
        raise UserDataError(
            f"'{spec.name}': user_data={value!r} looks like a raw address or a ctypes object, whose memory "
            "capsules cannot keep alive; pass the values instead (a float, a list or a numpy array)",
            **spec.where(),
        )


def _as_array(spec: ExportSpec, value: Any, dtype: np.dtype) -> np.ndarray:
    try:
        raw = np.asarray(value)
        problem = _array_problem(raw, dtype)
    except (TypeError, ValueError) as err:
        problem = str(err)
    if problem:
        raise UserDataError(
            f"'{spec.name}': user_data must be a float, a sequence of numbers or a 1-D array ({dtype}), "
            f"not {problem}",
            **spec.where(),
        )
    with np.errstate(invalid="ignore", over="ignore"):  # out-of-range values are refused just below
        data = np.array(raw, dtype=dtype, order="C", copy=True).reshape(-1)
    _refuse_inexact(spec, raw.reshape(-1), data)
    return data


def _array_problem(raw: np.ndarray, dtype: np.dtype) -> str | None:
    if raw.dtype.kind not in "biuf":
        return f"values of dtype {raw.dtype}"
    if raw.ndim > 1:
        return f"a {raw.ndim}-D array"
    if dtype.kind in "iu" and raw.dtype.kind == "f" and not np.all(np.mod(raw, 1) == 0):
        bad = raw.reshape(-1)[np.mod(raw.reshape(-1), 1) != 0][0].item()
        return f"{bad!r}, which is not a whole number: the kernel reads {dtype} values"
    return None


def _refuse_inexact(spec: ExportSpec, given: np.ndarray, converted: np.ndarray) -> None:
    """Refuse a value the kernel's dtype cannot hold exactly (2**40 into int32, 1e20 into int64, ...)."""
    if converted.dtype.kind not in "iu" and given.dtype.kind not in "iu":
        return  # float to float: rounding is what a float parameter means
    # Python's int and float compare exactly, whatever their sizes
    for want, got in zip(given.tolist(), converted.tolist()):
        if want != got:
            raise UserDataError(
                f"'{spec.name}': user_data value {want!r} does not fit the kernel's {converted.dtype} exactly "
                f"(it would become {got!r})",
                **spec.where(),
            )


def _check_length(spec: ExportSpec, slot: int, data: np.ndarray) -> None:
    need = spec.reads[slot] or 0
    if data.size < need:
        raise UserDataError(
            f"'{spec.name}' reads {spec.params[slot]}[{need - 1}], but user_data has {data.size} value(s)",
            **spec.where(),
        )
