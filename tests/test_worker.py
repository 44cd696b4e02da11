"""The resident worker (`dataops_dev.cli.resident`): `review` and `build` served by a fork of a process
that has dbt imported give what a process of their own gives (report, exit code, stdout and
stderr), in the caller's directory and environment; Ctrl-C reaches the command; a killed caller
stops it; the socket directory must be private; the worker serves only the code it started from
and leaves when idle. Real dbt runs on a tiny real project, real processes and sockets.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dataops_dev.cli import resident as worker
from tests.real_projects import TEST_SALT, ProjectRepo, make_project_repo

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("worker")]

MODEL = "models/customer_totals.sql"


def wait_until(condition, timeout: float = 180.0, what: str = "condition") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def forks_of(server: int) -> list[int]:
    """The worker's forks: its children running its own command line (dbt's multiprocessing
    also gives it a resource tracker)."""
    command = Path(f"/proc/{server}/cmdline").read_bytes()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                same = (entry / "cmdline").read_bytes() == command
            except OSError:
                continue
            if int(fields[1]) == server and fields[0] != "Z" and same:
                found.append(int(entry.name))
    return found


class Workspace:
    """ss_tiny with production and a sample, on a branch; commands run as a user runs them,
    with the worker on and its sockets in a private directory of this test module."""

    def __init__(self, repo: ProjectRepo, runtime: Path) -> None:
        self.repo = repo
        self.runtime = runtime
        self.version = 0

    def env(self, **extra: str) -> dict[str, str]:
        env = {**os.environ, "DATAOPS_SALT": TEST_SALT, "DATAOPS_RUNTIME_DIR": str(self.runtime)}
        env.update({"DATAOPS_WORKER": "1", "DATAOPS_WORKER_IDLE": "300", "CI": ""})
        env.update(extra)
        return {k: v for k, v in env.items() if v is not None}

    def start(self, *args: str, **extra: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "dataops_dev", *args],
            cwd=self.repo.project,
            env=self.env(**extra),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        process = self.start(*args, **extra)
        stdout, stderr = process.communicate(timeout=600)
        return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)

    def edit(self) -> None:
        """A one-model change on the branch, committed."""
        self.repo.replace(MODEL, f"'v{self.version}'", f"'v{self.version + 1}'")
        self.version += 1
        self.repo.commit(f"customer_totals v{self.version}")

    @property
    def location(self) -> worker.Location:
        return worker.Location(self.runtime, self._code_key())

    def _code_key(self) -> str:
        # The key as the CLI's own process computes it (its sys.path, its environment).
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                "from dataops_dev.cli import resident as worker; print(worker.code_key())",
            ],
            env=self.env(),
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout.strip()

    def wait_for_worker(self) -> int:
        """The running worker's pid; starts one (as a finished `build` does) if none runs."""
        location = self.location
        if worker.running_pid(location) is None:
            start = "from dataops_dev.cli import resident as worker; worker.start_in_background(['build'])"
            subprocess.run([sys.executable, "-c", start], env=self.env(), check=True)
        wait_until(lambda: worker.running_pid(location) is not None, what="a worker")
        pid = worker.running_pid(location)
        assert pid is not None
        return pid


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    base = tmp_path_factory.mktemp("worker")
    repo = make_project_repo("ss_tiny", base)
    from dataops_dev.config import load_config
    from dataops_dev.demo import build_production

    build_production(load_config(repo.project))
    runtime = Path(f"/tmp/dw-{os.getpid()}")  # short: a socket path has at most 107 bytes
    runtime.mkdir(mode=0o700)
    space = Workspace(repo, runtime)
    assert space.run("sample", DATAOPS_WORKER="0").returncode == 0
    repo.checkout_new_branch("feature")
    yield space
    for pid_file in runtime.glob("worker-*.lock"):
        key = pid_file.name.removeprefix("worker-").removesuffix(".lock")
        worker.stop(worker.Location(runtime, key))
    wait_until(lambda: not list(runtime.glob("*.sock")), timeout=60, what="workers to stop")
    for leftover in runtime.iterdir():
        leftover.unlink()
    runtime.rmdir()


def report_summary(stdout: str) -> dict[str, object]:
    report = json.loads(stdout)
    return {
        "verdict": report["verdict"],
        "models": sorted(
            (
                m["name"],
                m["status"],
                json.dumps(m.get("diff"), sort_keys=True),
                json.dumps(m.get("findings"), sort_keys=True),
                json.dumps(m.get("tests"), sort_keys=True),
            )
            for m in report["models"]
        ),
    }


def test_review_in_the_worker_gives_what_its_own_process_gives(
    workspace: Workspace, tmp_path: Path
) -> None:
    workspace.edit()
    first = workspace.run("build")  # in its own process: no worker yet; it starts one
    assert first.returncode == 0, first.stderr
    server = workspace.wait_for_worker()

    # Environments are built once (by this first review); both reviews below reuse them.
    first_review = workspace.run("review", "--json", "--no-reuse", DATAOPS_WORKER="0")
    served_report = tmp_path / "served.json"
    served = workspace.run(
        "review", "--json", "--no-reuse", DATAOPS_WORKER_REPORT=str(served_report)
    )
    # Served by a fork of the worker (not by the caller), which reported its own CPU time.
    assert served_report.exists(), served.stderr
    fork = json.loads(served_report.read_text())
    assert fork["cpu_s"] > 0
    assert fork["pid"] != server and not alive(fork["pid"])
    assert worker.running_pid(workspace.location) == server

    own = workspace.run("review", "--json", "--no-reuse", DATAOPS_WORKER="0")
    assert served.returncode == own.returncode == first_review.returncode, served.stderr
    assert report_summary(served.stdout) == report_summary(own.stdout)
    # The same progress and messages reach the caller's stderr (timings aside).
    strip = lambda text: [line.split(" (")[0] for line in text.splitlines()]  # noqa: E731
    assert strip(served.stderr) == strip(own.stderr)


def test_the_worker_runs_in_the_callers_directory_and_environment(workspace: Workspace) -> None:
    workspace.wait_for_worker()
    # A salt that is missing in the caller's environment is missing for the command too.
    without_salt = {**workspace.env(), "DATAOPS_SALT": ""}
    workspace.edit()
    served = subprocess.run(
        [sys.executable, "-m", "dataops_dev", "build"],
        cwd=workspace.repo.project,
        env={k: v for k, v in without_salt.items() if k != "DATAOPS_SALT"},
        capture_output=True,
        text=True,
        check=False,
    )
    own = subprocess.run(
        [sys.executable, "-m", "dataops_dev", "build"],
        cwd=workspace.repo.project,
        env={k: v for k, v in without_salt.items() if k != "DATAOPS_SALT"}
        | {"DATAOPS_WORKER": "0"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert own.returncode == served.returncode
    assert served.stderr == own.stderr
    # From a directory outside any project, the same error as a process of its own.
    outside = workspace.runtime.parent
    served = subprocess.run(
        [sys.executable, "-m", "dataops_dev", "review"],
        cwd=outside,
        env=workspace.env(),
        capture_output=True,
        text=True,
        check=False,
    )
    own = subprocess.run(
        [sys.executable, "-m", "dataops_dev", "review"],
        cwd=outside,
        env=workspace.env(DATAOPS_WORKER="0"),
        capture_output=True,
        text=True,
        check=False,
    )
    assert (served.returncode, served.stderr) == (own.returncode, own.stderr)
    assert served.returncode != 0


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_the_caller_reaches_the_command(workspace: Workspace, signum: int) -> None:
    server = workspace.wait_for_worker()
    outcomes = []
    for delay in (0.0, 0.2, 0.5, 0.8):  # the build is short: aim at its start, then later
        workspace.edit()
        process = workspace.start("build")
        wait_until(lambda: forks_of(server), timeout=60, what="the fork")
        time.sleep(delay)
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=300)
        outcomes.append(process.returncode)
        assert process.returncode in (128 + signum, 0), stderr
        assert not forks_of(server)  # the caller returns once the fork has exited
        if process.returncode == 128 + signum:
            assert stderr.rstrip().endswith("interrupted"), stderr
            assert "Traceback" not in stderr, stderr
            break
    assert outcomes[-1] == 128 + signum, outcomes
    again = workspace.run("build")  # the environment is whole: a build on it works
    assert again.returncode == 0, again.stderr


def build_in_a_fork(workspace: Workspace) -> tuple[int, subprocess.Popen[str], int]:
    """(worker pid, caller, fork pid) of a `build` of a fresh edit, once its fork runs."""
    server = workspace.wait_for_worker()
    workspace.edit()
    process = workspace.start("build")
    wait_until(lambda: forks_of(server), timeout=60, what="the fork")
    (fork,) = forks_of(server)
    return server, process, fork


def test_a_killed_caller_stops_its_command(workspace: Workspace) -> None:
    server, process, fork = build_in_a_fork(workspace)
    time.sleep(0.5)
    process.kill()
    process.communicate(timeout=60)
    wait_until(lambda: not alive(fork), timeout=120, what="the fork to stop")
    assert alive(server)
    again = workspace.run("build")
    assert again.returncode == 0, again.stderr


def test_a_killed_command_is_reported_by_its_caller(workspace: Workspace) -> None:
    _, process, fork = build_in_a_fork(workspace)
    os.kill(fork, signal.SIGKILL)  # as the kernel's OOM killer would
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGKILL
    assert stderr.rstrip().endswith("error: the command was killed by SIGKILL"), stderr
    again = workspace.run("build")  # the environment is still usable
    assert again.returncode == 0, again.stderr


def test_no_worker_when_turned_off_or_in_ci(tmp_path: Path, workspace: Workspace) -> None:
    runtime = Path(f"/tmp/dw-off-{os.getpid()}")
    runtime.mkdir(mode=0o700)
    try:
        for setting in ({"DATAOPS_WORKER": "0"}, {"DATAOPS_WORKER": "", "CI": "true"}):
            result = workspace.run("build", DATAOPS_RUNTIME_DIR=str(runtime), **setting)
            assert result.returncode == 0, result.stderr
            time.sleep(1.0)
            assert list(runtime.iterdir()) == []
        assert worker.enabled({"CI": "true", "DATAOPS_WORKER": "1"})
        assert not worker.enabled({"CI": "1"})
        assert worker.enabled({})
    finally:
        runtime.rmdir()


@pytest.mark.parametrize("flaw", ["open to others", "a link", "someone else's"])
def test_the_socket_directory_must_be_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flaw: str
) -> None:
    directory = tmp_path / "runtime"
    if flaw == "a link":
        real = tmp_path / "real"
        real.mkdir(mode=0o700)
        directory.symlink_to(real)
    else:
        directory.mkdir(mode=0o700)
        if flaw == "open to others":
            directory.chmod(0o777)
        elif os.getuid() == 0:
            os.chown(directory, 65534, 65534)
        else:
            pytest.fail("run as root to give the directory to another user")
    monkeypatch.setenv("DATAOPS_RUNTIME_DIR", str(directory))
    assert worker.Location.current() is None
    assert worker.dispatch(["review"]) is None  # the command runs in its own process


def test_a_private_directory_is_made_and_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh = Path(f"/tmp/dw-fresh-{os.getpid()}")  # short: a socket path has at most 107 bytes
    monkeypatch.setenv("DATAOPS_RUNTIME_DIR", str(fresh))
    try:
        location = worker.Location.current()
        assert location is not None and location.directory == fresh
        assert fresh.stat().st_mode & 0o777 == 0o700
    finally:
        fresh.rmdir()
    # A directory whose socket path would not fit in a Unix socket address: no worker.
    monkeypatch.setenv("DATAOPS_RUNTIME_DIR", str(tmp_path / ("d" * 100)))
    assert worker.Location.current() is None


def test_the_code_key_follows_sources_and_installed_distributions(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "a.py").write_text("x = 1\n")
    site = tmp_path / "site-packages"
    site.mkdir()
    (site / "dbt_core-1.11.16.dist-info").mkdir()
    first = worker.code_key(package, [str(site)])
    assert worker.code_key(package, [str(site)]) == first
    (package / "a.py").write_text("x = 22\n")
    edited = worker.code_key(package, [str(site)])
    assert edited != first
    (site / "dbt_core-1.11.16.dist-info").rename(site / "dbt_core-1.11.17.dist-info")
    assert worker.code_key(package, [str(site)]) != edited


def test_an_idle_worker_leaves(workspace: Workspace) -> None:
    runtime = Path(f"/tmp/dw-idle-{os.getpid()}")
    runtime.mkdir(mode=0o700)
    try:
        env = workspace.env(DATAOPS_RUNTIME_DIR=str(runtime), DATAOPS_WORKER_IDLE="1")
        subprocess.run(
            [
                sys.executable,
                "-c",
                "from dataops_dev.cli import resident as worker; worker.start_in_background(['build'])",
            ],
            env=env,
            check=True,
        )
        wait_until(lambda: any(runtime.glob("*.sock")), what="the worker's socket")
        wait_until(lambda: not any(runtime.glob("*.sock")), what="the idle worker to leave")
        (lock,) = runtime.glob("*.lock")
        location = worker.Location(runtime, lock.name.removeprefix("worker-").removesuffix(".lock"))
        assert worker.running_pid(location) is None
    finally:
        for leftover in runtime.iterdir():
            leftover.unlink()
        runtime.rmdir()


def test_stop_lets_a_running_command_finish_and_report(workspace: Workspace) -> None:
    server = workspace.wait_for_worker()
    status = json.loads(workspace.run("worker", "status", "--json").stdout)
    assert status["pid"] == server and status["enabled"] is True
    workspace.edit()
    process = workspace.start("build")
    wait_until(lambda: forks_of(server), timeout=60, what="the fork")
    stopped = workspace.run("worker", "stop")
    assert stopped.stdout.strip() == f"stopped worker {server}"
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr  # its exit status still reached the caller
    assert "worker stopped" not in stderr
    wait_until(lambda: not alive(server), timeout=60, what="the worker to leave")
    assert not workspace.location.socket_path.exists()
    status = json.loads(workspace.run("worker", "status", "--json").stdout)
    assert status["pid"] is None
    assert workspace.run("worker", "stop").stdout.strip() == "no worker running"


def test_a_worker_that_cannot_warm_up_is_not_started_again(
    workspace: Workspace, tmp_path: Path
) -> None:
    # A `dbt` package that cannot be imported, first on the path of both caller and worker.
    shadow = tmp_path / "shadow" / "dbt"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('this dbt is broken')\n")
    runtime = Path(f"/tmp/dw-refused-{os.getpid()}")
    runtime.mkdir(mode=0o700)
    pythonpath = os.pathsep.join([str(shadow.parent), os.environ.get("PYTHONPATH", "")])
    env = workspace.env(DATAOPS_RUNTIME_DIR=str(runtime), PYTHONPATH=pythonpath)
    start = "from dataops_dev.cli import resident as worker; worker.start_in_background(['build'])"
    try:
        subprocess.run([sys.executable, "-c", start], env=env, check=True)
        wait_until(lambda: any(runtime.glob("*.refused")), what="the refusal")
        (refused,) = runtime.glob("*.refused")
        assert "this dbt is broken" in refused.read_text()
        wait_until(lambda: not any(runtime.glob("*.sock")), what="the worker to leave")
        subprocess.run([sys.executable, "-c", start], env=env, check=True)
        time.sleep(1.0)
        assert not any(runtime.glob("*.sock"))  # not started again
        status = subprocess.run(
            [sys.executable, "-m", "dataops_dev", "worker", "status"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        assert status.stdout.startswith("off for this installation: warm-up failed")
    finally:
        for leftover in runtime.iterdir():
            leftover.unlink()
        runtime.rmdir()


def test_a_worker_started_for_other_code_serves_nothing(tmp_path: Path) -> None:
    runtime = Path(f"/tmp/dw-other-{os.getpid()}")
    runtime.mkdir(mode=0o700)
    try:
        env = {**os.environ, "DATAOPS_RUNTIME_DIR": str(runtime)}
        # As if the caller's `dataops_dev` were another copy than the one this process imports.
        subprocess.run(
            [sys.executable, "-m", "dataops_dev.cli.resident", str(runtime), "0" * 20],
            env=env,
            check=True,
            timeout=120,
        )
        location = worker.Location(runtime, "0" * 20)
        assert location.refused() == "the worker would import other code than yours"
        assert not location.socket_path.exists() and worker.running_pid(location) is None
    finally:
        for leftover in runtime.iterdir():
            leftover.unlink()
        runtime.rmdir()
