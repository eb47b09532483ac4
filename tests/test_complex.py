"""Integrands declared ``-> complex``: their real and imaginary parts, against quad(complex_func=True)."""

from __future__ import annotations

import pickle
import textwrap
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate

import capsules
from capsules.generate.module import scan

KERNEL = '''
import cmath
import math


#capsules integrand wave(x; k, decay) -> complex
def wave(x, k, decay):
    """exp((i k - decay) x)"""
    return cmath.exp(complex(-decay, k) * x)


#capsules integrand spectrum(t; samples: float64[:], omega) -> complex
def spectrum(t, samples, omega):
    """A tabulated signal times exp(-i omega t), sampled at 0, 1/(n - 1), ..., 1."""
    n = len(samples)
    i = min(int(t * (n - 1)), n - 2)
    f = t * (n - 1) - i
    value = samples[i] * (1.0 - f) + samples[i + 1] * f
    return value * complex(math.cos(omega * t), -math.sin(omega * t))


#capsules integrand real_valued(x; a) -> complex
def real_valued(x, a):
    return a * x
'''


@pytest.fixture(scope="module", params=[False, True], ids=["default", "checked"])
def mod(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
        cache_dir: Path) -> capsules.KernelModule:
    path = tmp_path_factory.mktemp("complex") / "waves.py"
    path.write_text(KERNEL.lstrip())
    return capsules.load(path, cache=cache_dir, checked=request.param)


def _complex_quad(parts: capsules.ComplexParts, a: float, b: float, **options: object) -> complex:
    return integrate.quad(parts.real, a, b, **options)[0] + 1j * integrate.quad(parts.imag, a, b, **options)[0]


@pytest.mark.compile
@pytest.mark.parametrize(("k", "decay"), [(3.0, 0.5), (-7.5, 0.0), (0.0, 2.0)])
def test_the_parts_against_quad_complex_func(mod: capsules.KernelModule, k: float, decay: float) -> None:
    parts = mod.wave.lowlevel(k=k, decay=decay)
    assert isinstance(parts, capsules.ComplexParts)
    assert parts.real.signature == parts.imag.signature == "double (int, double *, void *)"
    python = integrate.quad(mod.wave.py, 0, 2, args=(k, decay), complex_func=True)[0]
    assert _complex_quad(parts, 0, 2) == pytest.approx(python, rel=1e-13)
    closed = (np.exp(complex(-decay, k) * 2) - 1) / complex(-decay, k) if (k, decay) != (0, 0) else 2
    assert _complex_quad(parts, 0, 2) == pytest.approx(closed, rel=1e-12)


@pytest.mark.compile
def test_with_an_array_parameter(mod: capsules.KernelModule) -> None:
    samples = np.cos(np.linspace(0, 1, 50) * 4.0) + 0.25
    knots = np.linspace(0, 1, 50)[1:-1]
    parts = mod.spectrum.lowlevel(samples=samples, omega=9.0)
    python = integrate.quad(mod.spectrum.py, 0, 1, args=(samples, 9.0), complex_func=True, points=knots, limit=200)[0]
    assert _complex_quad(parts, 0, 1, points=knots, limit=200) == pytest.approx(python, rel=1e-12)


@pytest.mark.compile
def test_a_real_valued_kernel_has_a_zero_imaginary_part(mod: capsules.KernelModule) -> None:
    parts = mod.real_valued.lowlevel(a=3.0)
    assert _complex_quad(parts, 0, 2) == 6.0


@pytest.mark.compile
def test_the_parts_pickle_with_their_parameters(mod: capsules.KernelModule) -> None:
    parts = mod.wave.lowlevel(k=3.0, decay=0.5)
    again = pickle.loads(pickle.dumps(parts))
    assert _complex_quad(again, 0, 1) == _complex_quad(parts, 0, 1)


@pytest.mark.compile
def test_the_module_lists_the_kernel_once(mod: capsules.KernelModule) -> None:
    assert [k.name for k in mod] == ["wave", "spectrum", "real_valued"]
    assert mod.wave.spec.declared == "integrand wave(x; k, decay) -> complex (real part)"
    with pytest.raises(capsules.UserDataError, match="missing decay"):
        mod.wave.lowlevel(k=1.0)


@pytest.mark.parametrize(
    ("comment", "message"),
    [
        ("filter k(x) -> complex", "only '-> complex' may follow the parentheses, and only for a integrand"),
        ("integrand k(x) -> float", "'-> float': only '-> complex'"),
    ],
)
def test_a_complex_result_only_for_integrands(comment: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "kernel.py"
    path.write_text(textwrap.dedent(f"""
        #capsules {comment}
        def k(x):
            return x
    """).lstrip())
    errors = scan(path).errors
    assert len(errors) == 1 and message in str(errors[0]) and str(errors[0]).startswith(f"{path}:1:")


@pytest.mark.compile
def test_a_complex_value_without_the_declaration_is_located(tmp_path: Path, cache_dir: Path) -> None:
    path = tmp_path / "undeclared.py"
    path.write_text(textwrap.dedent("""
        import cmath


        #capsules integrand wave(x; k)
        def wave(x, k):
            return cmath.exp(complex(0.0, k) * x)
    """).lstrip())
    with pytest.raises(capsules.CapsulesError) as caught:
        capsules.load(path, cache=cache_dir)
    assert str(caught.value).startswith(
        f"{path}:4: 'wave' returns a complex value; declare it '#capsules integrand wave(x; k) -> complex' "
        """(decorated: '@capsules.integrand("x; k -> complex")')""")
    assert "static_cast" not in str(caught.value)
