"""Verify's driver: each kernel of a target searched for an input at which its compiled and Python results differ."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path

from ..cache import Cache
from .calls import Caller
from .causes import Probe, classify
from .compare import agree
from .inputs import Case, cases
from .layout import Layout
from .report import Divergence, KernelResult, Report, describe
from .settings import EXAMPLES, ULP, Settings, comment_settings
from .subjects import Subject, Target, subjects


def verify(
    target: Target | Iterable[Target],
    *,
    examples: int = EXAMPLES,
    seed: int = 0,
    domains: Mapping[str, tuple[float, float]] | None = None,
    ulp: int = ULP,
    checked: bool = False,
    cache: Cache | str | Path | None = None,
) -> Report:
    """Check compiled kernels against the Python they were compiled from.

    Parameters
    ----------
    target
        A kernel (a file's or an inline one), a loaded module, a kernel
        file, a script with inline kernels, a directory (its kernel files),
        or a list of these.  Files are built first if needed.
    examples
        How many inputs Hypothesis generates per kernel (more when shrinking).
    seed
        The seed of Hypothesis's generator: the same seed, the same inputs.
    domains
        ``{"x": (0.0, 1.0)}``: the range of an argument's or parameter's
        values, of ``user_data``'s items, or a shape (see
        :class:`~capsules.verify.Settings`).
        A kernel's own ``#capsules verify`` comment wins over these.
    ulp
        The largest difference, in units in the last place, at which two
        values still agree.
    checked, cache
        The build of files to check (``load(..., checked=True)``), and the
        cache to find or build it in; a kernel or module given is checked
        as it was loaded (an inline kernel not yet built is built there).

    Returns
    -------
    Report
        One result per kernel; ``report.agrees`` is True when all agree.

    Raises
    ------
    CapsulesError
        A file cannot be read or built, or a verify comment is malformed.
    """
    settings = Settings(examples, seed, ulp).with_domains(domains or {})
    return Report(tuple(check(subject, settings) for subject in subjects(target, checked=checked, cache=cache)))


def check(subject: Subject, settings: Settings) -> KernelResult:
    """Search for an input at which the subject's compiled and Python results differ."""
    from hypothesis import HealthCheck, Phase, find
    from hypothesis import settings as hypothesis_settings
    from hypothesis.errors import Flaky, NoSuchExample

    layout = Layout(subject.kernel, subject.function, subject.text)
    caller = Caller(layout, subject.function)
    settings = comment_settings(subject.comments, subject.path, subject.line, settings, layout.names)
    result = KernelResult(subject.path, subject.line, subject.kernel.name, layout.role, settings)
    failures: list[Case] = []

    def differs(case: Case) -> bool:
        if agree(*caller.both(case), settings):
            return False
        failures.append(case)
        return True

    options = hypothesis_settings(max_examples=settings.examples, database=None, deadline=None,
                                  phases=(Phase.generate, Phase.shrink), suppress_health_check=list(HealthCheck))
    try:
        case = find(cases(layout, settings), differs, settings=options, random=random.Random(settings.seed))
    except NoSuchExample:
        return result
    except Flaky:  # a result that did not repeat: report the first input that differed, unshrunk
        if not failures:
            raise
        case = failures[0]
    return replace(result, divergence=divergence(caller, case, subject))


def divergence(caller: Caller, case: Case, subject: Subject) -> Divergence:
    """The divergence at ``case``: both outcomes, the input in words and its cause."""
    compiled, python = caller.both(case)
    cause, detail = classify(compiled, python, probe(caller, case, subject), subject.path)
    return Divergence(describe(caller.layout, case), str(compiled), str(python), cause, detail)


def probe(caller: Caller, case: Case, subject: Subject) -> Probe:
    """Run the Python side once more in a copy of its module that notes integers past int64."""
    noted = Probe()
    try:
        function = noted.instrumented(subject.text, subject.path, caller.function.__name__)
    except Exception:  # noqa: BLE001  (a module that cannot run again: classify without the probe)
        return noted
    noted.outcome = caller.python(case, function)
    return noted
