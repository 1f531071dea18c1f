"""Annotation load benchmark: simulated annotators drive next-task and submit over the REST API.

    .venv/bin/python bench/annotate_load.py --judgments 5000 --annotators 50

What it does:
1. Creates (or reuses) the PostgreSQL database of --database-url and migrates it.
2. Replaces the bench project with a fresh one: enough comparison tasks for the run at
   overlap k, a few gold tasks, and --annotators users with API tokens.
3. Starts gunicorn on the real WSGI app, configured as in production (DEBUG off).
4. Runs the annotators as asyncio tasks, each with its own keep-alive HTTP connection,
   each looping POST /projects/{id}/next-task then POST /assignments/{id}/submit until
   --judgments judgments are in. Closed loop by default (no think time): it measures the
   most the server can do. --rate paces the annotators to an offered load instead.
5. Prints judgments/s, latency percentiles per endpoint and the error count, then checks
   in the database that no task got more than k judgments.

gunicorn is stopped on the way out, also on Ctrl-C or SIGTERM.

The HTTP client is a minimal HTTP/1.1 client on asyncio streams: on a 2-core machine a
general-purpose client costs more CPU than the server can spare, which would measure the
client instead of Flywheel.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PROJECT_NAME = "Annotation load benchmark"
USER_PREFIX = "bench-annotator-"
CHOICES = ("a", "b", "tie", "both_bad")
CHOICE_WEIGHTS = (45, 40, 10, 5)


# --- Command line ----------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--judgments", type=int, default=5000, help="judgments to submit in total")
    p.add_argument("--annotators", type=int, default=50, help="concurrent simulated annotators")
    p.add_argument("--overlap-k", type=int, default=3, help="judgments wanted per task")
    p.add_argument("--gold-rate", type=float, default=0.1, help="the project's gold rate")
    p.add_argument("--gold-tasks", type=int, default=20)
    p.add_argument(
        "--history",
        type=int,
        default=30000,
        help="judgments already in the database before the run, on an earlier, finished project "
        "(an established deployment; 0 = empty tables, a fresh install)",
    )
    p.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="offered load in judgments/s; 0 = closed loop, as fast as served",
    )
    # The defaults are the Procfile's web process, so the numbers describe what `make run` serves.
    p.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    p.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker")
    p.add_argument(
        "--worker-class",
        default="",
        help="gunicorn worker class; default: sync for --threads 1, gthread otherwise",
    )
    p.add_argument("--access-log", action="store_true", help="write gunicorn's access log (to a temp file)")
    p.add_argument(
        "--submit-next",
        action="store_true",
        help='submit with "next": true and take the next lease from its answer (one request per judgment)',
    )
    p.add_argument("--port", type=int, default=8765)
    p.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/flywheel_bench"),
    )
    p.add_argument("--fresh-db", action="store_true", help="drop and recreate the database first")
    p.add_argument("--seed", type=int, default=1, help="random seed for the simulated choices")
    args = p.parse_args(argv)
    if args.judgments < 1 or args.annotators < 1 or args.overlap_k < 1:
        p.error("--judgments, --annotators and --overlap-k must be at least 1")
    if not args.worker_class:
        args.worker_class = "sync" if args.threads == 1 else "gthread"
    return args


def server_env(args: argparse.Namespace, data_dir: Path) -> dict[str, str]:
    """Production settings (DEBUG off: the debug cursor wrapper alone costs a lot), over plain HTTP."""
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_ENV": "production",
            "DATABASE_URL": args.database_url,
            "SECRET_KEY": secrets.token_urlsafe(64),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SECURE_SSL_REDIRECT": "0",
            "BEHIND_TLS_PROXY": "0",
            "FLYWHEEL_DATA_DIR": str(data_dir),
            "LOG_LEVEL": "warning",
            "DJANGO_SETTINGS_MODULE": "flywheel.settings",
            "PYTHONPATH": str(ROOT),
        }
    )
    # The bench runs no Celery worker; collection must not need one to serve annotators.
    env.pop("REDIS_URL", None)
    return env


# --- Database and seed data ------------------------------------------------------------------


def prepare_database(args: argparse.Namespace, env: dict[str, str]) -> None:
    url = urlparse(args.database_url)
    name = url.path.lstrip("/")
    conn = ["-h", url.hostname or "127.0.0.1", "-p", str(url.port or 5432), "-U", url.username or "postgres"]
    if args.fresh_db:
        subprocess.run(["dropdb", *conn, "--if-exists", name], check=True)
    exists = subprocess.run(
        ["psql", *conn, "-d", "postgres", "-tAc", f"SELECT 1 FROM pg_database WHERE datname = '{name}'"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    if exists != "1":
        subprocess.run(["createdb", *conn, name], check=True)
    subprocess.run(
        [str(BIN / "python"), "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
    )


@dataclass
class Seeded:
    project_id: int
    idle_project_id: int  # no tasks: the warm-up's next-task and submit change nothing
    tokens: list[str]
    tasks: int
    gold_tasks: int
    autovacuum: str  # PostgreSQL's setting: off, statistics stay as the seeding left them


def seed(args: argparse.Namespace, env: dict[str, str]) -> Seeded:
    """Fresh bench project and users, written with bulk inserts: setup is not what is measured."""
    os.environ.update(env)
    # Run as a script, sys.path starts at bench/; the app is imported from this checkout.
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.contrib.auth.hashers import make_password
    from django.db import connections, transaction
    from rest_framework.authtoken.models import Token

    from feedback.demo_data import PROMPTS
    from feedback.models import (
        Assignment,
        AssignmentState,
        ComparisonTask,
        Judgment,
        JudgmentSource,
        Project,
        Prompt,
        PromptSource,
        Response,
        ResponseSource,
    )
    from flywheel.models import Role, User

    rng = random.Random(args.seed)
    # Every seat of a task takes one judgment; leave a margin so the run never runs dry.
    n_tasks = math.ceil(args.judgments / args.overlap_k * 1.25) + args.annotators
    with transaction.atomic():
        Project.objects.filter(name__startswith=PROJECT_NAME).delete()
        User.objects.filter(username__startswith=USER_PREFIX).delete()
        samples = [p for p in PROMPTS if len(p.responses) >= 2]

        def tasks(project: Project, count: int, gold: int = 0) -> list[ComparisonTask]:
            prompts = Prompt.objects.bulk_create(
                Prompt(project=project, text=f"{sample.text} (#{i})", source=PromptSource.SEED)
                for i, sample in enumerate(samples[i % len(samples)] for i in range(count + gold))
            )
            responses = Response.objects.bulk_create(
                Response(
                    project=project,
                    prompt=prompt,
                    text=samples[i % len(samples)].responses[side],
                    source=ResponseSource.SEED,
                )
                for i, prompt in enumerate(prompts)
                for side in (0, 1)
            )
            return ComparisonTask.objects.bulk_create(
                ComparisonTask(
                    project=project,
                    prompt=prompt,
                    response_a=responses[2 * i],
                    response_b=responses[2 * i + 1],
                    # An active learner sets priorities; random ones exercise the same ordering.
                    priority=rng.random(),
                    is_gold=i >= count,
                    gold_answer="a" if i >= count else "",
                )
                for i, prompt in enumerate(prompts)
            )

        password = make_password(secrets.token_urlsafe(16))
        users = User.objects.bulk_create(
            User(username=f"{USER_PREFIX}{i:03d}", role=Role.ANNOTATOR, password=password)
            for i in range(args.annotators)
        )
        tokens = Token.objects.bulk_create(Token(key=Token.generate_key(), user=u) for u in users)
        if args.history:
            # An earlier project these annotators finished: the tables a running deployment has.
            earlier = Project.objects.create(name=f"{PROJECT_NAME} (history)", overlap_k=args.overlap_k)
            judged = tasks(earlier, math.ceil(args.history / args.overlap_k))
            at = datetime.now(UTC) - timedelta(days=1)
            leases = Assignment.objects.bulk_create(
                Assignment(
                    task=task,
                    annotator=users[(i * args.overlap_k + seat) % len(users)],
                    leased_at=at,
                    expires_at=at + timedelta(minutes=10),
                    state=AssignmentState.SUBMITTED,
                    left_side=rng.choice("ab"),
                    closed_at=at,
                )
                for i, task in enumerate(judged)
                for seat in range(args.overlap_k)
            )
            Judgment.objects.bulk_create(
                Judgment(
                    task=lease.task,
                    annotator=lease.annotator,
                    assignment=lease,
                    choice=rng.choices(CHOICES, CHOICE_WEIGHTS)[0],
                    left_side=lease.left_side,
                    time_spent_ms=rng.randint(2000, 60000),
                    idempotency_key=secrets.token_hex(8),
                    source=JudgmentSource.API,
                )
                for lease in leases[: args.history]
            )
        project = Project.objects.create(
            name=PROJECT_NAME,
            guidelines="Pick the more helpful, honest and harmless response.",
            overlap_k=args.overlap_k,
            gold_rate=args.gold_rate,
            lease_seconds=600,
        )
        tasks(project, n_tasks, args.gold_tasks)
        idle = Project.objects.create(name=f"{PROJECT_NAME} (warm-up, no tasks)", overlap_k=args.overlap_k)
    # Statistics as autovacuum keeps them on a running deployment. VACUUM too: the previous
    # run's rows, deleted above, would otherwise still fill the pages, and statistics that find
    # pages but no live rows in them tell the planner a table is empty for the whole run.
    with connections["default"].cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
        cursor.execute("SHOW autovacuum")
        autovacuum = cursor.fetchone()[0]
    connections.close_all()
    return Seeded(project.pk, idle.pk, [t.key for t in tokens], n_tasks, args.gold_tasks, autovacuum)


def verify(project_id: int, overlap_k: int) -> dict[str, int]:
    """The invariant under load: no non-gold task ever exceeds k judgments."""
    from django.db import connections
    from django.db.models import Count, Max

    from feedback.models import Judgment

    judgments = Judgment.objects.filter(task__project_id=project_id)
    per_task = judgments.filter(task__is_gold=False).values("task").annotate(n=Count("id"))
    over = per_task.filter(n__gt=overlap_k).count()
    result = {
        "judgments": judgments.count(),
        "max_per_task": per_task.aggregate(m=Max("n"))["m"] or 0,
        "tasks_over_k": over,
        "duplicate_pairs": judgments.values("task", "annotator")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count(),
    }
    connections.close_all()
    return result


# --- gunicorn --------------------------------------------------------------------------------


class Server:
    def __init__(self, args: argparse.Namespace, env: dict[str, str], data_dir: Path) -> None:
        self.args = args
        self.env = env
        self.log_path = data_dir / "gunicorn.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def command(self) -> list[str]:
        a = self.args
        cmd = [
            str(BIN / "gunicorn"),
            "flywheel.wsgi:application",
            "--bind",
            f"127.0.0.1:{a.port}",
            "--workers",
            str(a.workers),
            "--worker-class",
            a.worker_class,
            "--timeout",
            "60",
            "--backlog",
            "2048",
            "--log-level",
            "warning",
        ]
        if a.worker_class == "gthread":
            cmd += ["--threads", str(a.threads)]
        if a.access_log:
            cmd += ["--access-logfile", str(self.log_path.with_name("access.log"))]
        return cmd

    def start(self) -> None:
        log = self.log_path.open("wb")
        # Its own session, so the terminal's Ctrl-C reaches only us and we stop it in order.
        self.proc = subprocess.Popen(
            self.command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited at start:\n{self.log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.args.port}/api/v1/", timeout=2):
                    pass
            except urllib.error.HTTPError:
                return  # any HTTP answer (401, 404) means it is serving
            except OSError:
                time.sleep(0.2)
                continue
            return
        raise RuntimeError("gunicorn did not answer within 60 s")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        # SIGTERM is gunicorn's graceful shutdown; the group kill catches a stuck worker.
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


# --- CPU accounting --------------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    """utime + stime of one process from /proc (Linux), 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _processes() -> list[tuple[int, int, str]]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        found.append((int(entry.name), ppid, cmdline))
    return found


def cpu_snapshot(gunicorn_pid: int, database: str) -> dict[str, dict[int, float]]:
    """CPU seconds so far of the gunicorn workers and of the PostgreSQL backends serving
    the bench database. On a machine shared with other work, wall-clock numbers move with
    the neighbours' load; CPU seconds per judgment do not, so the report shows both."""
    snap: dict[str, dict[int, float]] = {"gunicorn": {}, "postgres": {}}
    if not Path("/proc/self/stat").exists():
        return snap
    for pid, ppid, cmdline in _processes():
        if ppid == gunicorn_pid:
            snap["gunicorn"][pid] = _cpu_seconds(pid)
        elif cmdline.startswith("postgres: ") and f" {database} " in cmdline:
            snap["postgres"][pid] = _cpu_seconds(pid)
    return snap


class CpuMeter:
    """Polls cpu_snapshot twice a second, so a PostgreSQL backend that exits mid-run (Django
    reconnects after CONN_MAX_AGE) still counts with what it had used when last seen."""

    def __init__(self, gunicorn_pid: int, database: str) -> None:
        self.gunicorn_pid = gunicorn_pid
        self.database = database
        self.before: dict[str, dict[int, float]] = {}
        self.last: dict[str, dict[int, float]] = {}
        self.own_seconds = 0.0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)

    def _sample(self) -> None:
        for kind, seconds in cpu_snapshot(self.gunicorn_pid, self.database).items():
            self.last.setdefault(kind, {}).update(seconds)

    def _poll(self) -> None:
        while not self.stopping.wait(0.5):
            self._sample()
        # The polling is client-side work that is not the client's; the report leaves it out.
        self.own_seconds = time.thread_time()

    def start(self) -> None:
        self.before = cpu_snapshot(self.gunicorn_pid, self.database)
        self.last = {kind: dict(seconds) for kind, seconds in self.before.items()}
        self.thread.start()

    def stop(self) -> dict[str, float]:
        self.stopping.set()
        self.thread.join()
        self._sample()
        return {
            kind: sum(seconds - self.before.get(kind, {}).get(pid, 0.0) for pid, seconds in pids.items())
            for kind, pids in self.last.items()
        }


# --- HTTP client -----------------------------------------------------------------------------


class HttpError(Exception):
    pass


class Connection:
    """One keep-alive HTTP/1.1 connection; reconnects when the server closes it (sync workers do)."""

    def __init__(self, host: str, port: int, token: str) -> None:
        self.host = host
        self.port = port
        self.head = f"Host: {host}:{port}\r\nAuthorization: Token {token}\r\nAccept: application/json\r\n"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, payload: Mapping[str, object] | None) -> tuple[int, bytes]:
        body = json.dumps(payload).encode() if payload is not None else b""
        request = (
            f"POST {path} HTTP/1.1\r\n{self.head}Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        reused = self.writer is not None
        try:
            head = await self._send(request)
        except (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError) as exc:
            # gunicorn closes a keep-alive connection after 2 s idle (paced runs idle that
            # long). Such a request was never read, so sending it again on a new connection
            # is what any HTTP client does; a failure on a fresh connection is an error.
            if not reused or (isinstance(exc, asyncio.IncompleteReadError) and exc.partial):
                raise
            await self.close()
            head = await self._send(request)
        assert self.reader is not None
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            data = await self.reader.readexactly(int(headers["content-length"]))
        elif status in (204, 304):
            data = b""
        else:
            raise HttpError(f"{status} without Content-Length")
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, data

    async def _send(self, request: bytes) -> bytes:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(request)
        return await self.reader.readuntil(b"\r\n\r\n")

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
            self.reader = None


@dataclass
class Run:
    target: int
    rate: float
    submit_next: bool = False
    issued: int = 0
    done: int = 0
    exhausted: int = 0
    started: float = 0.0
    finished: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    # Paced runs: each judgment's time from its scheduled start to its recorded submit. Unlike
    # the per-request latencies it also counts any wait for a free annotator when the server
    # falls behind (no coordinated omission).
    from_schedule: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    cpu: dict[str, float] = field(default_factory=dict)
    steal: float | None = None

    def error(self, what: str) -> None:
        self.errors[what] += 1
        if sum(self.errors.values()) > 200:
            raise RuntimeError(f"too many errors, giving up: {dict(self.errors)}")


async def timed_post(
    run: Run, conn: Connection, endpoint: str, path: str, payload: Mapping[str, object] | None
) -> tuple[int, bytes] | None:
    """POST and record the latency under `endpoint`; on a broken connection, count the error,
    give the judgment back to the pool of work and return None."""
    t0 = time.perf_counter()
    try:
        answer = await conn.post(path, payload)
    except (OSError, asyncio.IncompleteReadError, HttpError) as exc:
        run.error(f"{endpoint} {type(exc).__name__}")
        run.issued -= 1
        await conn.close()
        return None
    run.latencies[endpoint].append(time.perf_counter() - t0)
    return answer


async def annotator(run: Run, conn: Connection, project_id: int, rng: random.Random) -> None:
    next_path = f"/api/v1/projects/{project_id}/next-task"
    carried: dict[str, object] | None = None
    while run.issued < run.target:
        slot = run.issued
        run.issued += 1
        if run.rate:
            # Paced: judgment n starts no earlier than n / rate seconds into the run.
            scheduled = run.started + slot / run.rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        if carried is not None:
            # The previous submit handed out this lease (--submit-next).
            assignment, carried = carried, None
        else:
            answer = await timed_post(run, conn, "next-task", next_path, None)
            if answer is None:
                continue
            status, body = answer
            if status == 204:
                run.exhausted += 1
                run.issued -= 1
                return
            if status != 200:
                run.error(f"next-task HTTP {status}")
                run.issued -= 1
                continue
            assignment = json.loads(body)
        submit_path = f"/api/v1/assignments/{assignment['assignment_id']}/submit"
        choice = rng.choices(CHOICES, CHOICE_WEIGHTS)[0]
        payload = {
            "choice": choice,
            "strength": rng.choice(("slight", "clear")) if choice in ("a", "b") else "",
            "time_spent_ms": rng.randint(4_000, 60_000),
            # What a careful client sends, so a retried submit is never counted twice.
            "idempotency_key": f"bench-{assignment['assignment_id']}",
        }
        if run.submit_next:
            payload["next"] = True
        answer = await timed_post(run, conn, "submit", submit_path, payload)
        if answer is None:
            continue
        status, body = answer
        if status == 201:
            run.done += 1
            if run.rate:
                run.from_schedule.append(time.perf_counter() - scheduled)
            if run.submit_next:
                carried = json.loads(body).get("next")
                if carried is None:
                    run.exhausted += 1
                    break
            if run.done == run.target:
                run.finished = time.perf_counter()
        else:
            run.error(f"submit HTTP {status}")
            run.issued -= 1
    await conn.close()


async def warm_up(port: int, tokens: list[str], requests: int, idle_project_id: int) -> None:
    """What a worker does once and then never again stays out of the numbers: the imports of
    its first request, and on each thread's database connection the first call of the lease
    function (PL/pgSQL compiles it per connection) and the first plan of each hot statement.
    The hot endpoints are warmed on a project without tasks, so nothing is leased or judged."""
    idle_next = f"/api/v1/projects/{idle_project_id}/next-task"
    submit = '{"choice": "a", "idempotency_key": "warm-up"}'
    paths = (
        ("GET", "/api/v1/projects/", ""),
        ("POST", idle_next, ""),
        # No assignment 0: the submit statement runs, finds no lease and answers 404.
        ("POST", "/api/v1/assignments/0/submit", submit),
    )

    async def one(token: str, method: str, path: str, body: str) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Token {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n{body}".encode()
        )
        await reader.read()
        writer.close()

    for method, path, body in paths:
        for _ in range(3):
            await asyncio.gather(*(one(tokens[i % len(tokens)], method, path, body) for i in range(requests)))


async def drive(args: argparse.Namespace, seeded: Seeded, gunicorn_pid: int) -> Run:
    await warm_up(args.port, seeded.tokens, max(8, args.workers * args.threads * 2), seeded.idle_project_id)
    run = Run(target=args.judgments, rate=args.rate, submit_next=args.submit_next)
    rng = random.Random(args.seed)
    meter = CpuMeter(gunicorn_pid, urlparse(args.database_url).path.lstrip("/"))
    meter.start()
    steal_before = machine_steal()
    client_before = time.process_time()
    run.started = time.perf_counter()
    await asyncio.gather(
        *(
            annotator(
                run,
                Connection("127.0.0.1", args.port, token),
                seeded.project_id,
                random.Random(rng.random()),
            )
            for token in seeded.tokens
        )
    )
    if not run.finished:
        run.finished = time.perf_counter()
    run.cpu = meter.stop()
    steal_after = machine_steal()
    if steal_before and steal_after and steal_after[1] > steal_before[1]:
        run.steal = (steal_after[0] - steal_before[0]) / (steal_after[1] - steal_before[1])
    run.cpu["client"] = time.process_time() - client_before - meter.own_seconds
    return run


# --- Report ----------------------------------------------------------------------------------


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, math.ceil(q / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


def report(args: argparse.Namespace, run: Run, seeded: Seeded, checked: dict[str, int]) -> str:
    elapsed = run.finished - run.started
    rows = [(name, sorted(run.latencies[name])) for name in ("next-task", "submit")]
    rows.append(("all requests", sorted(run.latencies["next-task"] + run.latencies["submit"])))
    errors = sum(run.errors.values())
    table = [
        "| endpoint | requests | p50 ms | p95 ms | p99 ms | max ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, values in rows:
        cells = [f"{percentile(values, q) * 1000:.1f}" for q in (50, 95, 99, 100)]
        table.append(f"| {name} | {len(values)} | {' | '.join(cells)} |")
    rate = f"paced at {args.rate:g} judgments/s" if args.rate else "closed loop, no think time"
    if run.from_schedule:
        waits = sorted(run.from_schedule)
        table.append(
            f"| judgment, from its scheduled start | {len(waits)} | "
            + " | ".join(f"{percentile(waits, q) * 1000:.1f}" for q in (50, 95, 99, 100))
            + " |"
        )
    lines = [
        f"judgments: {run.done} in {elapsed:.2f} s = {run.done / elapsed:.1f} judgments/s "
        f"({args.annotators} annotators, {rate}"
        + (", submit with next: one request per judgment)" if args.submit_next else ")"),
        f"requests/s: {sum(len(v) for v in run.latencies.values()) / elapsed:.1f}",
        f"errors: {errors}" + (f" {dict(run.errors)}" if errors else ""),
        f"annotators that ran out of tasks: {run.exhausted}",
        "CPU per judgment: "
        + ", ".join(f"{kind} {seconds / max(run.done, 1) * 1000:.1f} ms" for kind, seconds in run.cpu.items())
        + f" (total {sum(run.cpu.values()) / max(run.done, 1) * 1000:.1f} ms;"
        f" {sum(run.cpu.values()) / elapsed:.2f} of {os.cpu_count()} CPUs busy with the bench"
        + ("" if run.steal is None else f"; CPU steal {run.steal:.1%}")
        + ")",
        f"server: gunicorn {args.worker_class} --workers {args.workers}"
        + (f" --threads {args.threads}" if args.worker_class == "gthread" else "")
        + (", access log on" if args.access_log else ", no access log"),
        f"data: {seeded.tasks} tasks at k={args.overlap_k} + {seeded.gold_tasks} gold, "
        f"gold rate {args.gold_rate:g}; {args.history} judgments already in the database; "
        f"PostgreSQL autovacuum {seeded.autovacuum}",
        f"invariant: max judgments on a task {checked['max_per_task']} (k={args.overlap_k}), "
        f"tasks over k: {checked['tasks_over_k']}, repeated (task, annotator): {checked['duplicate_pairs']}, "
        f"judgments in the database: {checked['judgments']}",
        "",
        *table,
    ]
    return "\n".join(lines)


def calibrate() -> float:
    """CPU milliseconds of a fixed single-threaded Python workload (JSON and dict work, like a
    request's), best of five. The same code ran 3x faster on one machine of the same kind than
    on another, so every report carries this figure to make runs on different machines
    comparable."""
    payload = {"choice": "a", "strength": "clear", "rationale": "because " * 8, "ids": list(range(40))}
    best = math.inf
    for _ in range(5):
        start = time.process_time()
        for _ in range(5000):
            decoded = json.loads(json.dumps(payload))
            {key: str(value) for key, value in decoded.items()}
        best = min(best, time.process_time() - start)
    return best * 1000


def machine_steal() -> tuple[int, int] | None:
    """(steal, total) jiffies of all CPUs from /proc/stat: time the hypervisor gave to others."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    return (fields[7], sum(fields[:8])) if len(fields) >= 8 else None


def machine() -> str:
    load = os.getloadavg()
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, load average before the run {load[0]:.2f}, "
        f"calibration {calibrate():.0f} ms CPU (a fixed Python workload; lower is faster)"
    )


# --- Main ------------------------------------------------------------------------------------


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Set SIGINT too: a shell that starts us in the background hands SIGINT over ignored,
    # and Python then never raises KeyboardInterrupt for it.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupt)
    with tempfile.TemporaryDirectory(prefix="flywheel-bench-") as tmp:
        data_dir = Path(tmp)
        env = server_env(args, data_dir)
        print(f"preparing {args.database_url} ...", flush=True)
        prepare_database(args, env)
        seeded = seed(args, env)
        server = Server(args, env, data_dir)
        print("machine:", machine())
        print("server:", " ".join(server.command[1:]), flush=True)
        try:
            server.start()
            assert server.proc is not None
            run = asyncio.run(drive(args, seeded, server.proc.pid))
        except KeyboardInterrupt:
            print("\ninterrupted; stopping gunicorn", file=sys.stderr)
            return 130
        finally:
            server.stop()
        checked = verify(seeded.project_id, args.overlap_k)
        text = report(args, run, seeded, checked)
        print(text)
        failed = checked["tasks_over_k"] or checked["duplicate_pairs"] or run.errors
        return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
