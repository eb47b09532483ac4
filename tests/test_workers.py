"""Compiler processes started ahead of their builds (capsules.workers): used when they can be, never when not."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from scipy import integrate

import capsules
from capsules import workers

pytestmark = pytest.mark.compile

KERNEL = """\
from math import exp

#pythran export capsule f(float64)
def f(x):
    return exp(-SCALE * x * x)
"""


@pytest.fixture
def private_cache(tmp_path: Path) -> capsules.Cache:
    root = tmp_path / "cache"
    root.mkdir(mode=0o700)
    return capsules.Cache(root)


@pytest.fixture
def interactive(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """As in IPython: a server is kept between builds (none kept at the start)."""
    workers.retire()
    monkeypatch.setattr(workers, "interactive", lambda: True)
    yield
    workers.retire()


def _kernel(tmp_path: Path, name: str, scale: float) -> Path:
    path = tmp_path / f"{name}.py"
    path.write_text(KERNEL.replace("SCALE", repr(scale)))
    return path


def _check(path: Path, cache: capsules.Cache, scale: float) -> None:
    # against the closed form: the integral of exp(-s x^2) over the line is sqrt(pi / s)
    value, _ = integrate.quad(capsules.load(path, cache=cache).f.lowlevel(), -50, 50)
    assert value == pytest.approx((3.141592653589793 / scale) ** 0.5, rel=1e-10)


def _servers(monkeypatch: pytest.MonkeyPatch) -> list[workers._Server]:
    """Every server this process starts from now on."""
    started: list[workers._Server] = []

    class Recorded(workers._Server):
        def __init__(self, command: tuple[str, ...]) -> None:
            super().__init__(command)
            started.append(self)

    monkeypatch.setattr(workers, "_Server", Recorded)
    return started


def test_a_batch_imports_pythran_once_and_leaves_no_process_behind(
    private_cache: capsules.Cache, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workers, "interactive", lambda: False)
    started = _servers(monkeypatch)
    paths = [_kernel(tmp_path, f"k{i}", 1.0 + i) for i in range(3)]
    results = capsules.build(paths, cache=private_cache, jobs=2)
    for i, path in enumerate(paths):
        _check(path, private_cache, 1.0 + i)
    # one server forked the three builds: only the first of them may have waited for its import
    (server,) = started
    imports = sorted(json.loads(r.entry.directory.joinpath("entry.json").read_text())["phase_seconds"]
                     ["import_pythran"] for r in results)
    assert imports[:2] == [0.0, 0.0]
    assert not workers._SERVERS
    assert server.process.wait(timeout=30) == 0  # it ended with the batch


def test_interactive_session_keeps_a_server_that_the_next_build_uses(
    private_cache: capsules.Cache, tmp_path: Path, interactive: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = _servers(monkeypatch)
    capsules.build([_kernel(tmp_path, "first", 1.0)], cache=private_cache)
    capsules.build([_kernel(tmp_path, "second", 2.0)], cache=private_cache)
    _check(tmp_path / "second.py", private_cache, 2.0)
    (server,) = started
    assert workers._SERVERS == [server] and server.process.poll() is None
    workers.retire()
    assert server.process.wait(timeout=30) == 0


def test_a_build_outside_a_batch_has_a_server_that_ends_with_it(
    private_cache: capsules.Cache, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workers, "interactive", lambda: False)
    started = _servers(monkeypatch)
    capsules.build([_kernel(tmp_path, "alone", 2.0)], cache=private_cache)
    _check(tmp_path / "alone.py", private_cache, 2.0)
    (server,) = started
    assert server.process.wait(timeout=30) == 0 and not workers._SERVERS


def test_a_changed_environment_is_not_served_by_an_older_server(
    private_cache: capsules.Cache, tmp_path: Path, interactive: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = _servers(monkeypatch)
    capsules.build([_kernel(tmp_path, "first", 1.0)], cache=private_cache)
    monkeypatch.setenv("CAPSULES_CXXFLAGS", "-DCAPSULES_TEST_FLAG=1")
    (result,) = capsules.build([_kernel(tmp_path, "second", 2.0)], cache=private_cache)
    first, second = started
    assert first.process.wait(timeout=30) == 0 and workers._SERVERS == [second]  # stopped, not used
    assert "-DCAPSULES_TEST_FLAG=1" in (result.entry.binary.parent / "build.log").read_text()


def test_a_dead_server_is_replaced(private_cache: capsules.Cache, tmp_path: Path, interactive: None) -> None:
    capsules.build([_kernel(tmp_path, "first", 1.0)], cache=private_cache)
    (server,) = workers._SERVERS
    server.process.kill()
    server.process.wait()
    capsules.build([_kernel(tmp_path, "second", 3.0)], cache=private_cache)
    _check(tmp_path / "second.py", private_cache, 3.0)
    assert workers._SERVERS and workers._SERVERS[0] is not server


def test_a_build_outlives_its_server(private_cache: capsules.Cache, tmp_path: Path, interactive: None,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # the server dies while a build's process compiles: the process carries on, and the build waits for it
    take = workers.take

    def take_and_kill_the_server() -> workers.Process:
        process = take()
        stdin_close = process.stdin.close

        def close() -> None:
            stdin_close()
            deadline = time.monotonic() + 30
            while process.pid is None and time.monotonic() < deadline:
                time.sleep(0.01)
            process._server.process.kill()

        process.stdin.close = close  # type: ignore[method-assign]
        return process

    monkeypatch.setattr(workers, "take", take_and_kill_the_server)
    capsules.build([_kernel(tmp_path, "orphan", 4.0)], cache=private_cache)
    _check(tmp_path / "orphan.py", private_cache, 4.0)


def test_a_process_stopped_before_its_request_is_never_started(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workers, "interactive", lambda: False)
    started = _servers(monkeypatch)
    process = workers.take()
    process.kill()
    assert process.wait() == -signal.SIGKILL and process.pid is None
    process.stdin.close()
    (server,) = started
    assert server.process.wait(timeout=30) != 0  # never used: stopped at once


@pytest.mark.skipif(not Path("/proc/self/cwd").exists(), reason="reads a process's folder from /proc (Linux)")
def test_a_server_starts_in_the_root_folder_and_each_build_works_in_its_own(
    private_cache: capsules.Cache, tmp_path: Path, interactive: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    capsules.build([_kernel(tmp_path, "first", 1.0)], cache=private_cache)
    (server,) = workers._SERVERS
    assert os.readlink(f"/proc/{server.process.pid}/cwd") == os.path.abspath(os.sep)
    (result,) = capsules.build([_kernel(tmp_path, "second", 2.0)], cache=private_cache)
    log = (result.entry.binary.parent / "build.log").read_text()
    assert "second" in log.splitlines()[0]  # the compiler's command went to this build's log
    assert not list(tmp_path.glob("*.cpp"))


COMMAND = """
import sys
sys.argv = ["/venv/bin/capsules", *sys.argv[1:]]
import capsules  # as the console script does, through capsules.cli
from capsules import workers
print(len(workers._LIVE))
from capsules.cli import main
code = main(sys.argv[1:])
print(code, len(workers._SERVERS))
"""


@pytest.mark.parametrize(("build", "expected"), [(True, ["0", "0 0"]), (False, ["0", "0 0"])])
def test_importing_capsules_starts_no_compiler_server_and_its_build_command_builds(
    tmp_path: Path, build: bool, expected: list[str]
) -> None:
    import subprocess
    import sys

    path = str(_kernel(tmp_path, "early", 2.0))
    argv = ["build", path, "--cache", str(tmp_path / "cache")] if build else ["check", path]
    done = subprocess.run([sys.executable, "-c", COMMAND, *argv], capture_output=True, text=True, check=False,
                          timeout=300)
    lines = done.stdout.splitlines()
    # nothing started by the import; the build started its own server, which ended with it
    assert [lines[0], lines[-1]] == expected, done.stdout + done.stderr


PRESS_CTRL_C = """
import os, signal, sys, threading, time
signal.signal(signal.SIGINT, signal.default_int_handler)  # a shell starts background jobs with SIGINT ignored
import capsules
from capsules import workers

def press():
    while not any(server._running for server in list(workers._LIVE)):
        time.sleep(0.005)
    os.kill(os.getpid(), signal.SIGINT)  # to this process alone: its builds' processes miss it

threading.Thread(target=press, daemon=True).start()
outcomes = []
try:
    capsules.build(sys.argv[1:-1], cache=sys.argv[-1], jobs=2, on_result=lambda path, r: outcomes.append(r))
except KeyboardInterrupt:
    print("interrupted", sorted(type(r).__name__ for r in outcomes), all("interrupted" in str(r) for r in outcomes))
"""


def test_ctrl_c_stops_the_builds_under_way(tmp_path: Path) -> None:
    # Ctrl-C reaches the command but not its builds' processes (a build forked after the key was
    # pressed, or a signal sent to the command alone): the builds stop, rather than run to their end
    import subprocess
    import sys

    kernels = Path(__file__).resolve().parent.parent / "kernels"
    paths = []
    for i in range(2):
        path = tmp_path / f"filters{i}.py"
        path.write_text((kernels / "filters.py").read_text())
        paths.append(str(path))
    done = subprocess.run([sys.executable, "-c", PRESS_CTRL_C, *paths, str(tmp_path / "cache")],
                          capture_output=True, text=True, check=False, timeout=300)
    assert done.stdout.strip() == "interrupted ['BuildError', 'BuildError'] True", done.stdout + done.stderr


def test_where_processes_are_not_forked_each_build_starts_its_own(
    private_cache: capsules.Cache, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workers, "FORKS", False)
    started = _servers(monkeypatch)
    paths = [_kernel(tmp_path, f"own{i}", 1.0 + i) for i in range(2)]
    capsules.build(paths, cache=private_cache, jobs=2)
    for i, path in enumerate(paths):
        _check(path, private_cache, 1.0 + i)
    assert not started and not workers._SERVERS


def test_after_ctrl_c_the_next_build_has_a_new_server(
    private_cache: capsules.Cache, tmp_path: Path, interactive: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # in a notebook, a batch stopped by Ctrl-C is followed by more builds: they must not be stopped too
    started = _servers(monkeypatch)
    capsules.build([_kernel(tmp_path, "first", 1.0)], cache=private_cache)
    with workers.expect(2):  # as capsules.build does when Ctrl-C stops it
        workers.interrupt()
    capsules.build([_kernel(tmp_path, "second", 2.0)], cache=private_cache)
    _check(tmp_path / "second.py", private_cache, 2.0)
    first, second = started
    assert first.process.wait(timeout=30) == 0 and workers._SERVERS == [second]


FROZEN = """
import gc, runpy, sys
compiler = runpy.run_path(sys.argv[1])
frozen = gc.get_freeze_count()
compiler["_import_pythran"]()
print(gc.isenabled(), gc.get_freeze_count() - frozen, "pythran.toolchain" in sys.modules)
"""


def test_the_server_imports_pythran_then_freezes_it_with_the_collector_on_again() -> None:
    """What the import made is left out of each build's collections (their pages stay shared)."""
    import subprocess
    import sys

    path = Path(workers.CHILD)
    done = subprocess.run([sys.executable, "-I", "-c", FROZEN, str(path)], capture_output=True, text=True, check=True)
    enabled, frozen, imported = done.stdout.split()
    assert (enabled, imported) == ("True", "True")
    assert int(frozen) > 100_000  # pythran's tables, NumPy, SciPy
