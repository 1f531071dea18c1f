"""A small process supervisor for `make run`: starts every process in the Procfile, prefixes
their output, and stops them all together on Ctrl-C or when one of them dies."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
COLORS = ["\033[36m", "\033[35m", "\033[33m", "\033[32m", "\033[34m"]
RESET = "\033[0m"


def read_procfile(path: Path = ROOT / "Procfile") -> dict[str, str]:
    processes: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, command = line.partition(":")
        processes[name.strip()] = command.strip()
    return processes


def expand(command: str, env: dict[str, str]) -> list[str]:
    """Split a Procfile command and substitute ${VAR} from env, leaving %h and friends alone."""
    parts = shlex.split(command)
    out = []
    for part in parts:
        for key, value in env.items():
            part = part.replace("${" + key + "}", value)
        out.append(part)
    return out


def _pump(name: str, color: str, stream: IO[bytes], log: IO[bytes]) -> None:
    prefix = f"{color}{name:>6} |{RESET} ".encode()
    for line in iter(stream.readline, b""):
        log.write(line)
        log.flush()
        sys.stdout.buffer.write(prefix + line)
        sys.stdout.buffer.flush()


def _announce(port: str, stopping: threading.Event) -> None:
    """Print the URL once the web process answers, so it is the last thing a newcomer sees."""
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while not stopping.is_set() and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "healthz", timeout=2) as reply:  # noqa: S310 - our own URL
                if reply.status == 200:
                    break
        except OSError:
            stopping.wait(0.5)
    else:
        return
    bar = "=" * 64
    print(
        f"\n{bar}\n  Flywheel is running at {url}\n  Log in with a demo account printed above.\n"
        f"  Ctrl-C stops web, worker and beat.\n{bar}\n",
        flush=True,
    )


def main() -> int:
    env = dict(os.environ)
    env.setdefault("PORT", "8000")
    data_dir = Path(env.get("FLYWHEEL_DATA_DIR") or ROOT / ".flywheel").resolve()
    env["FLYWHEEL_DATA_DIR"] = str(data_dir)
    # On a laptop every core is shared by web, worker and training; one thread per torch op
    # is what made training fastest here (see training/).
    env.setdefault("OMP_NUM_THREADS", "1")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)

    children: dict[str, subprocess.Popen[bytes]] = {}
    for index, (name, command) in enumerate(read_procfile().items()):
        argv = expand(command, env)
        child = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
        )
        children[name] = child
        log = (logs / f"{name}.log").open("ab")
        assert child.stdout is not None
        threading.Thread(
            target=_pump, args=(name, COLORS[index % len(COLORS)], child.stdout, log), daemon=True
        ).start()

    stopping = threading.Event()

    def stop(*_: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    threading.Thread(target=_announce, args=(env["PORT"], stopping), daemon=True).start()

    exit_code = 0
    while not stopping.is_set():
        for name, child in children.items():
            if child.poll() is not None:
                print(f"{name} exited with status {child.returncode}; stopping the rest.", flush=True)
                exit_code = child.returncode or 1
                stopping.set()
                break
        stopping.wait(0.5)

    # SIGTERM to each leader only: gunicorn and celery then stop their own workers
    # gracefully. The whole group is killed only if a leader ignores us.
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    print("Flywheel stopped.", flush=True)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
