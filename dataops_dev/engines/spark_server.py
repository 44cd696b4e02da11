"""A local Spark Connect server: what `demo --backend spark` and the test suite run against.

The server is pyspark's own (`spark-submit --class …SparkConnectServer` with the Connect jar that
ships in the wheel), with a Hive metastore (Derby) and warehouse under one folder, so schemas and
tables outlive a restart. One server per folder: `ensure_local` reuses a live one (its address is
in `<home>/server.json`) and starts one otherwise. A cluster needs none of this: point the dbt
profile's `spark.remote` at it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from dataops_dev.errors import EngineError

STARTUP_SECONDS = 120

# WARN and above only: at INFO the server logs every statement it runs.
_LOG_CONFIG = """\
rootLogger.level = warn
rootLogger.appenderRef.stdout.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n
"""


@dataclass(frozen=True)
class LocalServer:
    home: Path
    port: int
    pid: int

    @property
    def remote(self) -> str:
        return f"sc://localhost:{self.port}"


def _pyspark_home() -> Path:
    try:
        import pyspark
    except ImportError as exc:
        raise EngineError(
            "the spark backend needs pyspark", 'install it with: pip install "dataops-dev[spark]"'
        ) from exc
    return Path(pyspark.__file__).parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _alive(pid: int) -> bool:
    try:
        # Reap it when it is our own child that has exited (a zombie still answers kill 0).
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def running(home: Path) -> LocalServer | None:
    """The live server recorded under `home`, if any."""
    try:
        record = json.loads((home / "server.json").read_text())
        server = LocalServer(home, int(record["port"]), int(record["pid"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return server if _alive(server.pid) and _listening(server.port) else None


def start(
    home: Path, *, port: int | None = None, threads: int = 2, memory: str = "2g"
) -> LocalServer:
    """Start a server for `home` and wait until it accepts connections."""
    pyspark_home = _pyspark_home()
    jars = sorted((pyspark_home / "jars").glob("spark-connect_*.jar"))
    if not jars:
        raise EngineError(
            f"no Spark Connect jar under {pyspark_home / 'jars'}", "reinstall pyspark"
        )
    home.mkdir(parents=True, exist_ok=True)
    port = port or _free_port()
    metastore = home / "metastore_db"
    conf = {
        "spark.connect.grpc.binding.port": str(port),
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.warehouse.dir": str(home / "warehouse"),
        "spark.hadoop.javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={metastore};create=true",
        "spark.driver.memory": memory,
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": str(max(2, threads * 2)),
        "spark.sql.ansi.enabled": "true",
        # Statements are logged at INFO by the server: keep its log at WARN.
        "spark.driver.extraJavaOptions": (
            f"-Dderby.system.home={home} -Dlog4j2.configurationFile=file:{home / 'log4j2.properties'}"
        ),
    }
    (home / "log4j2.properties").write_text(_LOG_CONFIG)
    argv = [str(pyspark_home / "bin" / "spark-submit"), "--master", f"local[{threads}]"]
    for key, value in conf.items():
        argv += ["--conf", f"{key}={value}"]
    argv += ["--class", "org.apache.spark.sql.connect.service.SparkConnectServer", str(jars[-1])]
    log = (home / "server.log").open("ab")
    env = {**os.environ, "SPARK_HOME": str(pyspark_home)}
    process = subprocess.Popen(
        argv, cwd=home, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    deadline = time.monotonic() + STARTUP_SECONDS
    while not _listening(port):
        if process.poll() is not None:
            raise EngineError(
                f"the local Spark Connect server exited with code {process.returncode}",
                f"see {home / 'server.log'}; Spark needs Java 17 or newer on PATH",
            )
        if time.monotonic() > deadline:
            process.kill()
            raise EngineError(
                f"the local Spark Connect server did not listen within {STARTUP_SECONDS} s",
                f"see {home / 'server.log'}",
            )
        time.sleep(0.25)
    server = LocalServer(home, port, process.pid)
    (home / "server.json").write_text(json.dumps({"port": port, "pid": process.pid}))
    return server


def ensure_local(home: Path, **options: object) -> LocalServer:
    """The server recorded under `home` when it is alive, otherwise a new one."""
    return running(home) or start(home, **options)  # type: ignore[arg-type]


def stop(server: LocalServer, timeout: float = 30) -> None:
    """Stop the server (its whole process group) and forget it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(server.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(server.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _alive(server.pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(server.pid, signal.SIGKILL)
    (server.home / "server.json").unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    """`python -m dataops_dev.engines.spark_server start|stop HOME` (used by `./dev test`)."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] not in ("start", "stop"):
        sys.stderr.write("usage: python -m dataops_dev.engines.spark_server start|stop HOME\n")
        return 2
    home = Path(args[1])
    if args[0] == "start":
        try:
            sys.stdout.write(ensure_local(home).remote + "\n")
        except EngineError as exc:
            sys.stderr.write(f"error: {exc.message}\n  hint: {exc.hint}\n")
            return 1
        return 0
    server = running(home)
    if server is not None:
        stop(server)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
