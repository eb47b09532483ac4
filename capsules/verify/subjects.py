"""Verify's subjects: the kernels a target names, each built or loaded and paired with its Python."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import workers
from ..build import Unit, build, kernel_files, units
from ..cache import Cache
from ..decorators import InlineKernel, lift_function
from ..errors import CapsulesError
from ..load import Kernel, KernelModule, load
from ..source import decode_source, read_source


@dataclass(frozen=True)
class Subject:
    """A compiled kernel, the Python function it was compiled from, and where to report it.

    ``text`` is the module as Python, its lines numbered as in ``path``
    (for an inline kernel, the module lifted from the script); ``comments``
    the text whose ``#capsules verify`` comments apply.
    """

    kernel: Kernel
    function: Callable[..., Any]
    path: str
    line: int
    text: str
    comments: str


Target = Kernel | KernelModule | str | Path


def subjects(target: Target | Iterable[Target], *, checked: bool = False,
             cache: Cache | str | Path | None = None) -> Iterator[Subject]:
    """The kernels ``target`` names, each built (or loaded) and paired with its Python."""
    if isinstance(target, (str, Path)):
        yield from _file_subjects(target, checked, cache)
    elif isinstance(target, Kernel):
        yield _kernel_subject(target, cache)
    elif isinstance(target, KernelModule):
        yield from (_kernel_subject(k, cache) for k in target)
    else:
        for one in target:
            yield from subjects(one, checked=checked, cache=cache)


def _file_subjects(path: str | Path, checked: bool, cache: Cache | str | Path | None) -> Iterator[Subject]:
    cache = cache if isinstance(cache, Cache) else Cache(cache)
    # every module at once, on every core; each then loads from the cache
    build([path], cache=cache, checked=checked, jobs=workers.cpus())
    todo, problems = units(kernel_files([path]))
    if problems:
        raise problems[0]
    for unit in todo:
        yield from _unit_subjects(unit, checked, cache)


def _unit_subjects(unit: Unit, checked: bool, cache: Cache) -> Iterator[Subject]:
    built = None
    try:
        built = unit.generated(cache)
        module = load(built, cache=cache, checked=checked)
    except CapsulesError as err:
        raise unit.relocate(err, built) from err
    if unit.lifted is None:
        yield from (_kernel_subject(k, cache) for k in module)
        return
    kernel = module[unit.kernel]
    function = getattr(module.python_module(), kernel.name)
    origin = "\n".join(unit.lifted.origin_lines)
    yield Subject(kernel, function, str(unit.path), unit.lifted.line, unit.lifted.text, origin)


def _kernel_subject(kernel: Kernel, cache: Cache | str | Path | None) -> Subject:
    if isinstance(kernel, InlineKernel):
        kernel.build(cache)  # as it was decorated (checked or not); nothing to do if it is built
        lifted = lift_function(kernel.function, kernel.declaration, kernel.defined)
        return Subject(kernel, kernel.py, lifted.origin, lifted.line, lifted.text, "\n".join(lifted.origin_lines))
    text = decode_source(read_source(kernel.module.path), kernel.module.path)
    return Subject(kernel, kernel.py, kernel.spec.path, kernel.spec.line, text, text)
