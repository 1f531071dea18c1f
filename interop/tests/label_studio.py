"""A real Label Studio server for the tests, from its own virtual environment.

scripts/label_studio.sh installs Label Studio (about 7 minutes, once) and initialises data
folders. Initialising runs Label Studio's migrations (about 2 minutes), so it is done once into
a template folder next to the venv; each test session copies the template and starts a server
on a free port in about 10 seconds, and stops it at the end.

Without the venv the Label Studio tests skip, unless FLYWHEEL_REQUIRE_LABEL_STUDIO is set: then
the venv is installed first, and any failure to start is an error.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "label_studio.sh"
VERSION = "1.23.2"
USERNAME = "flywheel@example.com"
PASSWORD = "flywheel-ls-password"
TOKEN = "flywheel0test0token0000000000000000000000"
START_TIMEOUT = 180


def venv() -> Path:
    return Path(
        os.environ.get("FLYWHEEL_LS_VENV") or Path.home() / ".cache" / "flywheel" / "label-studio-venv"
    )


def _env() -> dict[str, str]:
    return os.environ | {
        "FLYWHEEL_LS_VENV": str(venv()),
        "LS_USERNAME": USERNAME,
        "LS_PASSWORD": PASSWORD,
        "LS_TOKEN": TOKEN,
    }


def _installed() -> bool:
    return (venv() / "bin" / "label-studio").exists() and (venv() / f".installed-{VERSION}").exists()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _template() -> Path:
    """An initialised data folder, made once per venv (init takes minutes; a copy, no time)."""
    template = venv().parent / f"label-studio-template-{VERSION}"
    if not (template / "label_studio.sqlite3").exists():
        building = Path(tempfile.mkdtemp(prefix="ls-template-", dir=venv().parent))
        subprocess.run([str(SCRIPT), "init", str(building)], env=_env(), check=True, capture_output=True)
        shutil.rmtree(template, ignore_errors=True)
        building.rename(template)
    return template


@dataclass(frozen=True)
class Server:
    url: str
    token: str

    def client(self) -> Any:
        from label_studio_sdk import LabelStudio

        return LabelStudio(base_url=self.url, api_key=self.token, max_retries=0, timeout=30)


@pytest.fixture(scope="session")
def label_studio_server() -> Iterator[Server]:
    required = bool(os.environ.get("FLYWHEEL_REQUIRE_LABEL_STUDIO"))
    if not _installed():
        if not required:
            pytest.skip(
                f"Label Studio is not installed at {venv()}: run `scripts/label_studio.sh install` "
                "(about 7 minutes), or set FLYWHEEL_REQUIRE_LABEL_STUDIO=1 to have the tests install it"
            )
        subprocess.run([str(SCRIPT), "install"], env=_env(), check=True)
    data = Path(tempfile.mkdtemp(prefix="flywheel-ls-"))
    shutil.copytree(_template(), data, dirs_exist_ok=True)
    port = _free_port()
    log = (data / "server.log").open("wb")
    process = subprocess.Popen(
        [str(SCRIPT), "start", str(data), str(port)],
        env=_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"Label Studio exited with {process.returncode}; see {data / 'server.log'}"
                )
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"Label Studio did not answer within {START_TIMEOUT}s; see {data / 'server.log'}"
                )
            time.sleep(0.5)
        yield Server(url=url, token=TOKEN)
    finally:
        # The script execs Label Studio in its own session: signal that group, and only it.
        with_group = os.getpgid(process.pid) if process.poll() is None else None
        if with_group is not None:
            os.killpg(with_group, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(with_group, signal.SIGKILL)
                process.wait()
        log.close()
        shutil.rmtree(data, ignore_errors=True)
