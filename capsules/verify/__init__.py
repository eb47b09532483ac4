"""Stage 7: check each compiled kernel against its own Python, on inputs Hypothesis generates.

Pythran compiles Python with C's semantics in places: an int64 wraps where
Python's integers grow, a float division by zero gives inf where Python
raises, ``math.sqrt(-1)`` gives nan.  :func:`verify` calls each capsule the
way SciPy calls it, through its C function pointer with SciPy's argument
layout, and the function the user wrote with the same logical arguments,
and compares the two on inputs Hypothesis generates for the kernel's role.
The first input where they differ is shrunk to the smallest Hypothesis
finds, and its cause named when it is one of the known classes
(:data:`CAUSES`).

The stages, in the order a kernel goes through them: ``settings`` (the
options and ``#capsules verify`` comments), ``subjects`` (the kernels a
target names), ``layout`` (what a kernel's calls take), ``inputs`` (the
calls Hypothesis generates), ``calls`` (the two sides called), ``compare``
(whether they agree), ``causes`` (why not), ``report`` (the verdicts), and
``check``, which runs them.
"""

from __future__ import annotations

from .causes import CAUSES
from .check import check, verify
from .compare import Outcome, agree, close
from .report import Divergence, KernelResult, Report
from .settings import EXAMPLES, ULP, Settings, comment_settings, parse_domain
from .subjects import Subject, Target, subjects

__all__ = [
    "CAUSES",
    "EXAMPLES",
    "ULP",
    "Divergence",
    "KernelResult",
    "Outcome",
    "Report",
    "Settings",
    "Subject",
    "Target",
    "agree",
    "check",
    "close",
    "comment_settings",
    "parse_domain",
    "subjects",
    "verify",
]
