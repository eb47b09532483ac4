"""The SciPy signature table: exact strings, mismatches refused before anything runs."""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np
import pytest
from scipy import LowLevelCallable, integrate, ndimage

from capsules.errors import SignatureError
from capsules.signatures import FORMS, Form, match
from capsules.generate.module import read_exports

# Other spellings SciPy's C code lists for the same ABI (npy_intp is
# intptr_t; 'long' and 'long long' are accepted where they have its size).
INTP_SPELLINGS = ("npy_intp", "intptr_t", "long", "long long")


def forms_for(target: str) -> tuple[Form, ...]:
    """Every form a SciPy function accepts (for example ``forms_for("quad")``)."""
    return tuple(f for f in FORMS if target in f.targets)


def spellings(form: Form) -> tuple[str, ...]:
    """Every string SciPy accepts for ``form``: npy_intp has several names."""
    if "npy_intp" not in form.text:
        return (form.text,)
    return tuple(form.text.replace("npy_intp", s) for s in INTP_SPELLINGS)

ROOT = Path(__file__).resolve().parent.parent

GOOD = [
    ("float64", "double (double)", ("quad",)),
    ("float64, float64*", "double (double, void *)", ("quad",)),
    ("int32, float64*", "double (int, double *)", ("quad", "dblquad", "tplquad", "nquad")),
    ("int32, float64*, float64*", "double (int, double *, void *)", ("quad", "dblquad", "tplquad", "nquad")),
    ("int32, float64*, int64*", "double (int, double *, void *)", ("quad", "dblquad", "tplquad", "nquad")),
    ("float64*, int64, float64*, float64*", "int (double *, npy_intp, double *, void *)", ("generic_filter",)),
    (
        "float64*, int64, float64*, int64, float64*",
        "int (double *, npy_intp, double *, npy_intp, void *)",
        ("generic_filter1d",),
    ),
    ("int64*, float64*, int32, int32, float64*", "int (npy_intp *, double *, int, int, void *)", ("geometric_transform",)),
    ("int64*, float64*, intc, intc, float64*", "int (npy_intp *, double *, int, int, void *)", ("geometric_transform",)),
]

BAD = [
    ("int32, float32*, float64*", "argument 2 'a1' is float32* (C float *), but quad, dblquad, tplquad, nquad pass double *"),
    ("int64, float64*, float64*", "argument 1 'a0' is int64 (C npy_intp), but quad, dblquad, tplquad, nquad pass int"),
    ("float64*, int32, float64*, float64*", "argument 2 'a1' is int32 (C int), but generic_filter passes npy_intp"),
    ("int32*, float64*, int32, int32, float64*", "argument 1 'a0' is int32* (C int *), but geometric_transform passes npy_intp *"),
    ("int32, float64*, float64", "argument 3 'a2' is float64 (C double), but quad, dblquad, tplquad, nquad pass a pointer"),
    ("int32, float64[:], float64*", "argument 2 'a1' is float64[:], which is not a C scalar or pointer"),
    ("int32, int list, float64*", "argument 2 'a1' is int list, which is not a C scalar or pointer"),
    ("int32, None, float64*", "argument 2 'a1' is NoneType, which is not a C scalar or pointer"),
    ("int32, float64*, float64*, float64*, float64*, float64*", "takes 6 argument(s), but SciPy callbacks take 1, 2, 3, 4, 5"),
]


def _spec(write_kernel, types: str):
    n = len(types.split(","))
    params = ", ".join(f"a{i}" for i in range(n))
    path = write_kernel(f"x = 0\n#pythran export capsule k({types})\ndef k({params}):\n    return 1.0\n")
    (spec,) = read_exports(path)
    return path, spec


@pytest.mark.parametrize(("types", "signature", "targets"), GOOD)
def test_signature_strings(write_kernel, types, signature, targets):
    _, spec = _spec(write_kernel, types)
    sig = match(spec)
    assert (sig.text, sig.targets) == (signature, targets)


@pytest.mark.parametrize(("types", "fragment"), BAD)
def test_mismatch_names_file_line_and_argument(write_kernel, types, fragment):
    path, spec = _spec(write_kernel, types)
    with pytest.raises(SignatureError) as info:
        match(spec)
    assert str(info.value).startswith(f"{path}:2: ")
    assert fragment in str(info.value)


def test_user_data_dtype_is_the_pointee(write_kernel):
    _, spec = _spec(write_kernel, "int32, float64*, int64*")
    assert match(spec).user_data_dtype == "int64"
    _, spec = _spec(write_kernel, "int32, float64*")
    assert match(spec).user_data_dtype is None


def test_table_covers_every_caller():
    assert len(forms_for("quad")) == 4
    for name in ("dblquad", "tplquad", "nquad"):
        assert {f.text for f in forms_for(name)} == {"double (int, double *)", "double (int, double *, void *)"}
    for name in ("generic_filter", "generic_filter1d", "geometric_transform"):
        assert len(forms_for(name)) == 1


@pytest.mark.compile
def test_scipy_accepts_every_form_and_spelling(load_kernel_file):
    """Each form, under each spelling, is accepted by the real SciPy callers."""
    mod = load_kernel_file(ROOT / "tests" / "kernels" / "forms.py")
    by_text = {k.signature: k for k in mod}
    assert set(by_text) == {f.text for f in FORMS}
    for form in FORMS:
        kernel = by_text[form.text]
        for text in spellings(form):
            data = np.array([1.0, 2.0])
            cb = LowLevelCallable(kernel.capsule, ctypes.c_void_p(data.ctypes.data), text)
            _call_with(form.targets[0], cb, kernel)


def _call_with(target: str, cb: LowLevelCallable, kernel) -> None:
    image = np.arange(20.0).reshape(4, 5)
    if target == "quad":
        expected = integrate.quad(_python_integrand(kernel), 0, 1)[0]
        assert integrate.quad(cb, 0, 1)[0] == pytest.approx(expected, rel=1e-12)
    elif target == "generic_filter":
        assert np.array_equal(ndimage.generic_filter(image, cb, size=3), ndimage.generic_filter(image, np.ptp, size=3))
    elif target == "generic_filter1d":
        out = ndimage.generic_filter1d(image, cb, filter_size=1)
        assert np.array_equal(out, image)
    else:
        out = ndimage.geometric_transform(image, cb, order=1)
        assert np.array_equal(out, ndimage.geometric_transform(image, lambda c: c, order=1))


def _python_integrand(kernel):
    n = len(kernel.spec.types)
    if kernel.name == "gauss":
        return kernel.py
    if kernel.name == "scaled_gauss":
        return lambda x: kernel.py(x, np.array([1.0, 2.0]))
    if n == 2:
        return lambda x: kernel.py(1, np.array([x]))
    return lambda x: kernel.py(1, np.array([x]), np.array([1.0, 2.0]))
