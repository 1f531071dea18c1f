"""The deployed policy served by an OpenAI-compatible server (vLLM) instead of in process.

`ExternalPolicyModel.generate` has the signature of training.serving.PolicyModel.generate, so
the inference worker's slots, the pipeline's candidate generation and the generate API use
either without knowing which. Standard library only: the inference worker in external mode
never imports torch for the policy.

How a new version is "loaded" (attach):
- An adapter folder (adapter_config.json) is loaded into the running server as a new LoRA
  adapter (POST /v1/load_lora_adapter), named after the version, and requests name it.
- A full model folder (what training writes today: LoRA runs are merged before saving) cannot
  be swapped into a running vLLM. Whoever rolls the server out with `--model <folder>` does
  the pointing (deploy/serving/README.md); attach only checks that the server now serves
  that folder (GET /v1/models lists it as a model's root).
Either way the server must pass GET /health and answer a one-token completion with that model
before attach returns. Anything else raises, and the inference worker keeps the old version.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

ADAPTER_CONFIG = "adapter_config.json"


class ExternalServingError(Exception):
    pass


def served_name(folder: Path) -> str:
    """A stable name for a version's folder (the model store lays them out as
    <project>/<kind>/v<number>), used as the LoRA adapter name and in logs."""
    return "flywheel-" + "-".join(Path(folder).parts[-3:])


@dataclass
class ExternalPolicyModel:
    base_url: str
    # The name requests send as "model": an adapter name, or the served model's id.
    model: str
    folder: Path
    # /v1/chat/completions lets the server apply the model's chat template, as PolicyModel does;
    # "completions" sends prompts as they are, for a model without a template.
    api: str = "chat"
    timeout: float = 120.0
    adapter: bool = False
    _closed: bool = field(default=False, repr=False)

    @classmethod
    def attach(
        cls, *, base_url: str, folder: Path, api: str = "chat", timeout: float = 120.0
    ) -> ExternalPolicyModel:
        """Make the server serve `folder` and prove it answers, or raise ExternalServingError."""
        base_url = base_url.rstrip("/")
        folder = Path(folder)
        if (folder / ADAPTER_CONFIG).is_file():
            name = served_name(folder)
            model = cls(base_url, name, folder, api=api, timeout=timeout, adapter=True)
            try:
                model._post(
                    "/v1/load_lora_adapter", {"lora_name": name, "lora_path": str(folder)}, expect_json=False
                )
            except ExternalServingError as exc:
                # Another inference worker (or this one before a restart) loaded it already; the
                # health check below still has to pass.
                if "already" not in str(exc).lower():
                    raise
        else:
            probe = cls(base_url, "", folder, api=api, timeout=timeout)
            name = probe.served_model_for(folder)
            model = cls(base_url, name, folder, api=api, timeout=timeout)
        model.health_check()
        logger.info("external server %s serves %s as %s", base_url, folder, model.model)
        return model

    # --- HTTP ------------------------------------------------------------------------------

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, bytes]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - the URL is a validated http(s) setting
            self.base_url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as reply:  # noqa: S310
                return reply.status, reply.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:500].decode(errors="replace")
            raise ExternalServingError(
                f"{method} {self.base_url}{path} answered {exc.code}: {detail}"
            ) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ExternalServingError(f"{method} {self.base_url}{path} failed: {reason}") from None

    def _post(self, path: str, body: dict[str, Any], *, expect_json: bool = True) -> Any:
        _, raw = self._request("POST", path, body)
        if not expect_json:
            return raw
        try:
            return json.loads(raw)
        except ValueError:
            raise ExternalServingError(f"POST {self.base_url}{path} answered with no JSON") from None

    def _get_json(self, path: str) -> Any:
        _, raw = self._request("GET", path)
        try:
            return json.loads(raw)
        except ValueError:
            raise ExternalServingError(f"GET {self.base_url}{path} answered with no JSON") from None

    # --- Checks ----------------------------------------------------------------------------

    def served_model_for(self, folder: Path) -> str:
        """The id under which the server serves `folder` (vLLM reports the path as `root`)."""
        listed = self._get_json("/v1/models").get("data", [])
        wanted = str(Path(folder))
        for entry in listed:
            if str(entry.get("root", "")).rstrip("/") == wanted or entry.get("id") == wanted:
                return str(entry["id"])
        served = ", ".join(str(e.get("root") or e.get("id")) for e in listed) or "nothing"
        raise ExternalServingError(
            f"{self.base_url} does not serve {wanted} (it serves {served}); "
            "roll the server out with --model pointing at that folder first"
        )

    def health_check(self) -> None:
        self._request("GET", "/health")
        reply = self._post(
            "/v1/completions", {"model": self.model, "prompt": "Hello", "max_tokens": 1, "temperature": 0}
        )
        if not reply.get("choices"):
            raise ExternalServingError(f"{self.base_url} answered a one-token completion with no choices")

    def retire(self) -> None:
        """Unload this version's adapter once nothing uses it. A full model is the server's to stop."""
        if not self.adapter or self._closed:
            return
        self._closed = True
        try:
            self._post("/v1/unload_lora_adapter", {"lora_name": self.model}, expect_json=False)
        except ExternalServingError as exc:
            logger.warning("could not unload adapter %s: %s", self.model, exc)

    # --- Generation ------------------------------------------------------------------------

    def generate(
        self,
        prompts: list[str],
        n: int = 1,
        temperature: float = 0.8,
        max_new_tokens: int = 128,
        seed: int | None = None,
        batch_size: int = 8,
    ) -> list[list[str]]:
        """`n` replies per prompt, in prompt order, as PolicyModel.generate returns them.

        With the chat API each prompt is one request (the API takes one conversation), and
        `batch_size` of them are in flight at once; the server batches them itself. With the
        completions API `batch_size` prompts share a request.
        """
        if n < 1:
            raise ValueError("n must be at least 1")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        common: dict[str, Any] = {
            "model": self.model,
            "n": n,
            "temperature": temperature,
            "max_tokens": max_new_tokens,
        }
        if seed is not None:
            common["seed"] = seed
        if self.api == "completions":
            results: list[list[str]] = []
            for start in range(0, len(prompts), batch_size):
                batch = prompts[start : start + batch_size]
                reply = self._post("/v1/completions", {**common, "prompt": batch})
                results.extend(self._group(reply, len(batch), n, key="text"))
            return results

        def one(prompt: str) -> list[str]:
            body = {**common, "messages": [{"role": "user", "content": prompt}]}
            return self._group(self._post("/v1/chat/completions", body), 1, n, key="message")[0]

        with ThreadPoolExecutor(max_workers=min(batch_size, max(1, len(prompts)))) as pool:
            return list(pool.map(one, prompts))

    @staticmethod
    def _group(reply: dict[str, Any], prompts: int, n: int, *, key: str) -> list[list[str]]:
        """Choices come back numbered prompt * n + sample; put them back in that order."""
        choices = reply.get("choices") or []
        if len(choices) != prompts * n:
            raise ExternalServingError(f"expected {prompts * n} choices, got {len(choices)}")
        ordered = sorted(choices, key=lambda c: int(c.get("index", 0)))
        texts = [str(c["message"]["content"] if key == "message" else c["text"]).strip() for c in ordered]
        return [texts[i : i + n] for i in range(0, len(texts), n)]
