"""Local Apache Kafka (KRaft) and PostgreSQL for `make run` and the tests.

Kafka: the broker's jars come from Maven Central (deploy/kafka/pom.xml, resolved by `mvn`) and run
with the machine's Java, with a bounded heap. PostgreSQL: Debian's `postgresql` server binaries
(see README for why). Each is started only when its env var (KAFKA_BOOTSTRAP_SERVERS,
DATABASE_URL) is unset, waited for with a timeout, and stopped on exit.

`python -m deploy.local.stack exec -- CMD...` runs CMD with the stack's env and stops it after.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
POM = ROOT / "deploy" / "kafka" / "pom.xml"
LOG4J = ROOT / "deploy" / "kafka" / "log4j2.yaml"
JARS = ROOT / ".local" / "kafka" / "jars"
READY_TIMEOUT = 90.0


class StackError(RuntimeError):
    """A local dependency failed to start; the message names it and shows its log's tail."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        # As servers bind: a port whose last owner just exited (TIME_WAIT) counts as free.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _wait_for_port(name: str, port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StackError(f"{name} exited with code {proc.returncode}; log {log}:\n{_tail(log)}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.2)
    raise StackError(
        f"{name} not ready on port {port} after {READY_TIMEOUT:.0f}s; log {log}:\n{_tail(log)}"
    )


def _stop(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# ---------------------------------------------------------------- Kafka


def kafka_jars() -> Path:
    """Resolve the broker's jars once per pom version (cached under .local/)."""
    stamp = JARS / (".pom-" + hashlib.sha256(POM.read_bytes()).hexdigest()[:16])
    if stamp.exists():
        return JARS
    if shutil.which("mvn") is None:
        raise StackError("Kafka: `mvn` is not installed (needed to fetch the broker's jars)")
    if shutil.which("java") is None:
        raise StackError("Kafka: `java` is not installed (the broker runs on the machine's JVM)")
    shutil.rmtree(JARS, ignore_errors=True)
    JARS.mkdir(parents=True)
    print("Fetching Apache Kafka jars from Maven Central ...", file=sys.stderr, flush=True)
    subprocess.run(
        [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(POM),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={JARS}",
            "-DincludeScope=runtime",
        ],
        check=True,
    )
    stamp.touch()
    return JARS


@dataclass
class Kafka:
    data_dir: Path
    port: int
    controller_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        jars = kafka_jars()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        logs = self.data_dir / "logs"
        config = self.data_dir / "server.properties"
        config.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
                    f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
                    "controller.listener.names=CONTROLLER",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    f"log.dirs={self.data_dir / 'data'}",
                    "offsets.topic.replication.factor=1",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    "num.partitions=6",
                    "group.initial.rebalance.delay.ms=0",
                    "auto.create.topics.enable=false",
                ]
            )
            + "\n"
        )
        java = [
            "java",
            "-Xms128m",
            "-Xmx512m",
            "-XX:+UseG1GC",
            f"-Dlog4j2.configurationFile={LOG4J}",
            f"-Dkafka.logs.dir={logs}",
            "-cp",
            f"{jars}/*",
        ]
        if not (self.data_dir / "data" / "meta.properties").exists():
            subprocess.run(
                [
                    *java,
                    "kafka.tools.StorageTool",
                    "format",
                    "--ignore-formatted",
                    "-t",
                    str(uuid.uuid4().hex[:22]),
                    "-c",
                    str(config),
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        log = self.data_dir / "kafka.out"
        with log.open("ab") as out:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [*java, "kafka.Kafka", str(config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _wait_for_port("Kafka", self.port, self.proc, log)
        _wait_for_group_coordinator(self.bootstrap, self.proc, log)

    def stop(self) -> None:
        if self.proc:
            _stop(self.proc)


def _wait_for_group_coordinator(bootstrap: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Until the broker can coordinate a consumer group. For the first group, a fresh broker
    creates `__consumer_offsets` (50 partitions) first; a consumer asking meanwhile logs an
    error and a warning per retry (aiokafka), which every first `make run` and test session
    showed. Asked here instead, quietly, so the services start on a broker ready for them."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError

    async def ask() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            deadline = time.monotonic() + READY_TIMEOUT
            while True:
                try:
                    await admin.find_coordinator("pulse.stack")
                    return
                except KafkaError as exc:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise StackError(
                            f"Kafka cannot coordinate consumer groups ({exc!r}); "
                            f"log {log}:\n{_tail(log)}"
                        ) from exc
                    await asyncio.sleep(0.2)
        finally:
            await admin.close()

    asyncio.run(ask())


# ---------------------------------------------------------------- PostgreSQL


def postgres_bin() -> Path:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), reverse=True)
    if not candidates:
        raise StackError(
            "PostgreSQL: server binaries not found under /usr/lib/postgresql "
            "(install Debian's `postgresql` package; `make` does this as root)"
        )
    return candidates[0].parent


@dataclass
class Postgres:
    data_dir: Path
    port: int
    fast: bool = False  # tests: skip fsync; never for data you keep
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"postgresql://pulse@127.0.0.1:{self.port}/pulse"

    def _as_owner(self, cmd: list[str]) -> list[str]:
        # PostgreSQL refuses to run as root; Debian's package brings the `postgres` user.
        return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd

    def start(self) -> None:
        bindir = postgres_bin()
        pgdata = self.data_dir / "pgdata"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.data_dir, "postgres", "postgres")
        if not (pgdata / "PG_VERSION").exists():
            subprocess.run(
                self._as_owner(
                    [
                        str(bindir / "initdb"),
                        "-D",
                        str(pgdata),
                        "-U",
                        "pulse",
                        "--auth=trust",
                        "-E",
                        "UTF8",
                        "--locale=C.UTF-8",
                    ]
                ),
                check=True,
                stdout=subprocess.DEVNULL,
            )
        settings = [
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={self.data_dir}",
            "-c",
            "max_connections=200",
            "-c",
            "shared_buffers=256MB",
        ]
        if self.fast:
            settings += [
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]
        log = self.data_dir / "postgres.log"
        log.touch()
        if os.geteuid() == 0:
            shutil.chown(log, "postgres", "postgres")
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                self._as_owner(
                    [str(bindir / "postgres"), "-D", str(pgdata), "-p", str(self.port), *settings]
                ),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _wait_for_port("PostgreSQL", self.port, self.proc, log)
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            ready = subprocess.run(
                [str(bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)],
                check=False,
            )
            if ready.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise StackError(f"PostgreSQL not accepting connections; log {log}:\n{_tail(log)}")
            time.sleep(0.2)
        connect = ["-h", "127.0.0.1", "-p", str(self.port), "-U", "pulse"]
        exists = subprocess.run(
            [
                str(bindir / "psql"),
                *connect,
                "-d",
                "postgres",
                "-tAc",
                "SELECT 1 FROM pg_database WHERE datname = 'pulse'",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        if not exists:
            subprocess.run([str(bindir / "createdb"), *connect, "pulse"], check=True)

    def stop(self) -> None:
        if not self.proc:
            return
        # SIGINT = PostgreSQL's "fast" shutdown: roll back sessions, checkpoint, exit. Sent to
        # the postmaster itself: as root, `runuser` is in between, and it turns a signal into a
        # smart shutdown (which waits for every client) and kills the postmaster 2 s later.
        postmaster = self._postmaster_pid()
        if postmaster is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(postmaster, signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(READY_TIMEOUT)
        _stop(self.proc)

    def _postmaster_pid(self) -> int | None:
        """The running postmaster's pid, from the first line of its pid file."""
        try:
            return int((self.data_dir / "pgdata" / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None


# ---------------------------------------------------------------- both


@contextlib.contextmanager
def local_stack(data_dir: Path | None = None, fast: bool = False) -> Iterator[dict[str, str]]:
    """Start what the environment does not already point at; yield the env to use; stop it after.

    With `data_dir=None` everything lives in a temporary folder on free ports (tests); otherwise
    data persists there and the conventional ports are used when free (make run).
    """
    env: dict[str, str] = {}
    started: list[Kafka | Postgres] = []
    temp = None
    if data_dir is None:
        temp = tempfile.mkdtemp(prefix="pulse-stack-")
        os.chmod(temp, 0o755)
        data_dir = Path(temp)

    def pick(default: int) -> int:
        return default if temp is None and port_is_free(default) else free_port()

    try:
        if not os.environ.get("DATABASE_URL"):
            pg = Postgres(data_dir / "postgres", pick(5432), fast=fast)
            started.append(pg)
            pg.start()
            env["DATABASE_URL"] = pg.url
        if not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
            kafka = Kafka(data_dir / "kafka", pick(9092))
            started.append(kafka)
            kafka.start()
            env["KAFKA_BOOTSTRAP_SERVERS"] = kafka.bootstrap
        yield env
    finally:
        for service in reversed(started):
            service.stop()
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] != "exec" or "--" not in argv:
        print("usage: python -m deploy.local.stack exec -- CMD [ARGS...]", file=sys.stderr)
        return 2
    command = argv[argv.index("--") + 1 :]
    try:
        with local_stack(fast=True) as env:
            return subprocess.run(command, env={**os.environ, **env}, check=False).returncode
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
