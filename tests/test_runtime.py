"""capsules/generate: the static C++ headers compile on their own, and the tables agree with them."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from capsules.generate import runtime
from capsules.generate.module import read_exports
from capsules.generate.roles import ROLES
from capsules.signatures import ACCEPTED_RETURNS, match

HEADERS = sorted({*runtime.CHECKED_PROLOGUE, *runtime.ENTRY_RUNTIME})


def _text(name: str) -> str:
    return f"#include {name}\n" if name.startswith("<") else runtime.header(name)


@pytest.mark.compile
@pytest.mark.parametrize("name", HEADERS)
def test_each_header_compiles_on_its_own_after_what_it_needs(name: str, tmp_path: Path) -> None:
    from capsules.child.commands import _flags

    compiler, flags, _ = _flags(["-O0"], blas=False)
    source = tmp_path / "alone.cpp"
    # twice: its include guard must make the second copy nothing
    source.write_text("".join(map(_text, runtime.NEEDS.get(name, ()))) + _text(name) + _text(name))
    done = subprocess.run([*compiler, *flags, "-fsyntax-only", str(source)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]


def test_every_header_a_build_includes_is_in_the_package() -> None:
    shipped = {path.name for path in (Path(runtime.__file__).parent / "runtime").glob("*.hpp")}
    assert set(HEADERS) == shipped
    for name, needs in runtime.NEEDS.items():
        assert set(needs) - {n for n in needs if n.startswith("<")} <= shipped, name


def test_the_return_kinds_the_build_accepts_are_kinds_the_entry_runtime_names() -> None:
    kind = re.search(r"constexpr const char \*kind\(\) \{(.*?)\n\}", runtime.header("entry_runtime.hpp"), re.DOTALL)
    assert kind is not None
    named = set(re.findall(r'"([^"]+)"', kind.group(1)))
    for accepted in ACCEPTED_RETURNS.values():
        assert set(accepted) <= named


def test_the_user_data_header_is_read_from_its_header() -> None:
    magic, size = runtime.user_data_header()
    assert magic.to_bytes(8, "big") == b"capsules" and size == 16


@pytest.mark.parametrize("role", sorted(ROLES))
def test_each_roles_adapter_matches_a_scipy_form_of_its_targets(role: str, tmp_path: Path) -> None:
    count = ROLES[role].provided or 2
    provided = ", ".join(f"p{i}" for i in range(count))
    path = tmp_path / f"{role}.py"
    path.write_text(f"#capsules {role} k({provided}; a)\ndef k({provided}, a):\n    return a\n")
    (spec,) = read_exports(path)
    assert match(spec).targets == ROLES[role].targets
