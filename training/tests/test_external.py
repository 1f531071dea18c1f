"""The policy served by an OpenAI-compatible server (vLLM) behind PolicyModel's generate.

vLLM needs a GPU and cannot run here, so these tests talk to FakeVLLM: a real HTTP server on
127.0.0.1, written below, that answers the handful of vLLM endpoints Flywheel calls with the
same shapes (a test double, not vLLM). What it proves is our side of the protocol: request
bodies, choice ordering, and that the inference worker only switches to a version the server
has loaded and answered for.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from feedback.tests.factories import make_project
from training import inference
from training.artifacts import folder_digest
from training.external import ExternalPolicyModel, ExternalServingError, served_name
from training.inference import ModelSlots
from training.models import Deployment, ModelKind, ModelVersion

BASE = "base-model"


class FakeVLLM:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, Any]]] = []
        # id -> root, as vLLM lists them on /v1/models.
        self.models: dict[str, str] = {BASE: "/models/base"}
        self.adapters: dict[str, str] = {}
        self.broken: set[str] = set()
        self.fail_next: int | None = None
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: Any) -> None:
                raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header(
                    "Content-Type", "text/plain" if isinstance(body, str) else "application/json"
                )
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:
                with fake.lock:
                    fake.requests.append(("GET", self.path, {}))
                if self.path == "/health":
                    self._send(200, "")
                elif self.path == "/v1/models":
                    served = {**fake.models, **fake.adapters}
                    self._send(
                        200, {"object": "list", "data": [{"id": k, "root": v} for k, v in served.items()]}
                    )
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with fake.lock:
                    fake.requests.append(("POST", self.path, body))
                    failing, fake.fail_next = fake.fail_next, None
                if failing:
                    self._send(failing, {"error": {"message": "engine dead"}})
                elif self.path == "/v1/load_lora_adapter":
                    name = body["lora_name"]
                    if name in fake.adapters:
                        self._send(
                            400, {"error": {"message": f"The lora adapter '{name}' has already been loaded."}}
                        )
                    else:
                        fake.adapters[name] = body["lora_path"]
                        self._send(200, f"Success: LoRA adapter '{name}' added successfully.")
                elif self.path == "/v1/unload_lora_adapter":
                    fake.adapters.pop(body["lora_name"], None)
                    self._send(200, "Success")
                elif self.path in ("/v1/completions", "/v1/chat/completions"):
                    self._complete(body)
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def _complete(self, body: dict[str, Any]) -> None:
                model = body["model"]
                if model not in fake.models and model not in fake.adapters:
                    self._send(404, {"error": {"message": f"The model `{model}` does not exist."}})
                    return
                if model in fake.broken:
                    self._send(500, {"error": {"message": "CUDA error: an illegal memory access"}})
                    return
                chat = "messages" in body
                prompts = [body["messages"][-1]["content"]] if chat else body["prompt"]
                prompts = [prompts] if isinstance(prompts, str) else prompts
                n = body.get("n", 1)
                choices = []
                for i, prompt in enumerate(prompts):
                    for j in range(n):
                        # Padded, to show replies are stripped as PolicyModel strips them.
                        text = f"  {model}|{prompt}|{j}  "
                        choice = (
                            {"message": {"role": "assistant", "content": text}} if chat else {"text": text}
                        )
                        choices.append({"index": i * n + j, **choice})
                # Out of order on purpose: the index is what places a choice.
                self._send(200, {"choices": list(reversed(choices))})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def calls(self, path: str) -> list[dict[str, Any]]:
        return [body for _, p, body in self.requests if p == path]


@pytest.fixture
def vllm() -> Iterator[FakeVLLM]:
    fake = FakeVLLM()
    fake.thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def test_it_generates_n_replies_per_prompt_in_order_over_chat(vllm):
    model = ExternalPolicyModel(vllm.url, BASE, Path("/models/base"))
    out = model.generate(
        ["one", "two", "three"], n=2, temperature=0.5, max_new_tokens=7, seed=3, batch_size=2
    )
    assert out == [[f"{BASE}|{p}|0", f"{BASE}|{p}|1"] for p in ("one", "two", "three")]
    bodies = vllm.calls("/v1/chat/completions")
    assert len(bodies) == 3
    assert {b["messages"][0]["content"] for b in bodies} == {"one", "two", "three"}
    assert all(
        b["messages"][0]["role"] == "user"
        and (b["n"], b["temperature"], b["max_tokens"], b["seed"], b["model"]) == (2, 0.5, 7, 3, BASE)
        for b in bodies
    )


def test_it_batches_prompts_over_the_completions_api(vllm):
    model = ExternalPolicyModel(vllm.url, BASE, Path("/models/base"), api="completions")
    out = model.generate(["a", "b", "c"], n=2, temperature=0.0, max_new_tokens=5, batch_size=2)
    assert out == [[f"{BASE}|{p}|0", f"{BASE}|{p}|1"] for p in "abc"]
    assert [b["prompt"] for b in vllm.calls("/v1/completions")] == [["a", "b"], ["c"]]
    # No seed given, none sent: the server then samples freely.
    assert all("seed" not in b for b in vllm.calls("/v1/completions"))


def test_it_raises_a_clear_error_when_the_server_fails(vllm):
    model = ExternalPolicyModel(vllm.url, BASE, Path("/models/base"))
    vllm.fail_next = 503
    with pytest.raises(ExternalServingError, match=r"answered 503: .*engine dead"):
        model.generate(["x"])
    with pytest.raises(ExternalServingError, match="failed"):
        ExternalPolicyModel("http://127.0.0.1:1", BASE, Path("/m"), timeout=2).generate(["x"])


def adapter_folder(root: Path, project: int, number: int) -> Path:
    folder = root / str(project) / "policy" / f"v{number}"
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(
        json.dumps({"r": 16, "base_model_name_or_path": "/models/base"})
    )
    (folder / "adapter_model.safetensors").write_bytes(f"weights {number}".encode() * 50)
    return folder


def test_it_loads_an_adapter_then_checks_it_answers(vllm, tmp_path):
    folder = adapter_folder(tmp_path, 7, 3)
    model = ExternalPolicyModel.attach(base_url=vllm.url, folder=folder)
    assert model.model == served_name(folder) == "flywheel-7-policy-v3"
    assert [(m, p) for m, p, _ in vllm.requests] == [
        ("POST", "/v1/load_lora_adapter"),
        ("GET", "/health"),
        ("POST", "/v1/completions"),
    ]
    assert vllm.calls("/v1/load_lora_adapter") == [{"lora_name": model.model, "lora_path": str(folder)}]
    assert vllm.calls("/v1/completions")[0] | {"prompt": ""} == {
        "model": model.model,
        "prompt": "",
        "max_tokens": 1,
        "temperature": 0,
    }
    # A second worker attaching the same version finds it loaded and still checks it.
    again = ExternalPolicyModel.attach(base_url=vllm.url, folder=folder)
    assert again.model == model.model
    assert len(vllm.calls("/v1/completions")) == 2


def test_it_serves_a_full_model_only_once_the_server_has_it(vllm, tmp_path):
    folder = tmp_path / "3" / "policy" / "v2"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    with pytest.raises(ExternalServingError, match=f"does not serve {folder}"):
        ExternalPolicyModel.attach(base_url=vllm.url, folder=folder)
    vllm.models["policy-v2"] = str(folder)
    model = ExternalPolicyModel.attach(base_url=vllm.url, folder=folder)
    assert model.model == "policy-v2"
    assert model.generate(["hi"]) == [["policy-v2|hi|0"]]


@pytest.mark.django_db
def test_it_keeps_the_old_version_serving_until_the_new_one_answers(vllm, tmp_path, monkeypatch):
    # The watcher thread polls with its own connection, which cannot see this test's
    # transaction; refresh() is called here as the watcher would call it.
    monkeypatch.setattr(ModelSlots, "_ensure_watcher", lambda self: None)
    monkeypatch.setattr(inference, "RETIRE_AFTER_SECONDS", 0.01)
    project = make_project(name="External")

    def deploy(number: int) -> ModelVersion:
        folder = adapter_folder(tmp_path, project.pk, number)
        version = ModelVersion.objects.create(
            project=project,
            kind=ModelKind.POLICY,
            number=number,
            base="base",
            artifact_path=str(folder),
            artifact_sha256=folder_digest(folder),
        )
        Deployment.objects.filter(project=project, ended_at__isnull=True).update(ended_at="2026-01-01T00:00Z")
        Deployment.objects.create(project=project, kind=ModelKind.POLICY, version=version, action="promote")
        return version

    slots = ModelSlots()
    with override_settings(FLYWHEEL_POLICY_SERVING="external", FLYWHEEL_VLLM_URL=vllm.url):
        first = deploy(1)
        serving = slots.get(project.pk, "policy")
        assert serving.version_id == first.pk
        assert serving.model.generate(["hi"]) == [[f"flywheel-{project.pk}-policy-v1|hi|0"]]

        # Version 2 loads as an adapter but fails its one-token completion: no switch.
        second = deploy(2)
        vllm.broken.add(served_name(Path(second.artifact_path)))
        slots.refresh(project.pk, "policy")
        assert slots.get(project.pk, "policy").version_id == first.pk
        second.refresh_from_db()
        assert "could not load" in second.error and "illegal memory access" in second.error
        assert slots.get(project.pk, "policy").model.generate(["still"]) == [
            [f"flywheel-{project.pk}-policy-v1|still|0"]
        ]

        # Fixed server: the next poll switches, and the replaced adapter is unloaded later.
        vllm.broken.clear()
        slots.refresh(project.pk, "policy")
        assert slots.get(project.pk, "policy").version_id == second.pk
        deadline = time.monotonic() + 5
        while served_name(Path(first.artifact_path)) in vllm.adapters and time.monotonic() < deadline:
            time.sleep(0.02)
        assert set(vllm.adapters) == {served_name(Path(second.artifact_path))}
    slots.reset()
