"""Front end for users' test suites: assert that compiled kernels agree with their Python.

::

    from capsules.testing import assert_matches_python

    def test_my_kernel():
        assert_matches_python(capsules.load("my_kernels.py").f, domains={"x": (0.0, 1.0)})
"""

from __future__ import annotations

from typing import Any

from .verify import Target, verify


def assert_matches_python(kernel: Target, **options: Any) -> None:
    """Fail with the smallest input found at which a compiled kernel and its Python differ.

    Parameters
    ----------
    kernel
        What :func:`capsules.verify` takes: a kernel, a module, a file or a directory.
    **options
        :func:`capsules.verify`'s options (``examples``, ``seed``, ``domains``, ``ulp``, ...).

    Raises
    ------
    AssertionError
        Some kernel diverges; the message has each one's
        ``path:line: kernel: compiled gives A, Python gives B for inputs ...``
        and the cause.
    """
    __tracebackhide__ = True  # pytest shows the caller's line, not this one
    report = verify(kernel, **options)
    if not report.agrees:
        raise AssertionError("compiled kernel differs from its Python:\n"
                             + "\n".join(r.message() for r in report.divergences))
