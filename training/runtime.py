"""What every run shares: threads, offline mode, checkpoints, artifact metadata."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch

METADATA_FILE = "flywheel.json"
METADATA_FORMAT = 1
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def configure_threads() -> int:
    """Set torch's intra-op threads from OMP_NUM_THREADS, else 1 on CPU; returns the count in use.

    On a shared CPU box torch's default (one thread per core) oversubscribes: with small matrices
    one thread trained up to 27x faster here. With CUDA the CPU only feeds the GPU, so torch's
    default stands unless OMP_NUM_THREADS says otherwise.
    """
    requested = os.environ.get("OMP_NUM_THREADS", "").strip()
    if requested:
        try:
            threads = int(requested)
        except ValueError as error:
            raise ValueError(f"OMP_NUM_THREADS must be a positive integer, got {requested!r}") from error
        if threads < 1:
            raise ValueError(f"OMP_NUM_THREADS must be a positive integer, got {requested!r}")
        torch.set_num_threads(threads)
    elif not torch.cuda.is_available():
        torch.set_num_threads(1)
    return torch.get_num_threads()


def quiet_progress_bars() -> None:
    """Silence the per-file and per-map tqdm bars of transformers and datasets.

    In a worker's log they are noise; progress is reported through ProgressCallback instead.
    """
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()


def use_bf16(requested: bool) -> bool:
    # bf16 on CPU is emulated and slower than fp32; asking for it there is ignored, not an error,
    # so that one command line works on a laptop and on the GPU worker.
    return requested and torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def latest_checkpoint(folder: Path) -> Path | None:
    if not folder.is_dir():
        return None
    # A checkpoint folder without trainer_state.json was cut short while saving: skip it.
    steps = [
        (int(match.group(1)), path)
        for path in folder.iterdir()
        if (match := _CHECKPOINT.match(path.name)) and (path / "trainer_state.json").exists()
    ]
    return max(steps)[1] if steps else None


def checkpoint_step(checkpoint: Path | None) -> int:
    if checkpoint is None:
        return 0
    match = _CHECKPOINT.match(checkpoint.name)
    return int(match.group(1)) if match else 0


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def data_hashes(data_dir: Path, names: tuple[str, ...]) -> dict[str, str]:
    """Hashes of the export files a run read, plus the snapshot's manifest when there is one."""
    hashes = {name: sha256_file(data_dir / name) for name in names if (data_dir / name).exists()}
    if (data_dir / "manifest.json").exists():
        hashes["manifest.json"] = sha256_file(data_dir / "manifest.json")
    return hashes


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with Path(path).open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: not valid JSON ({error.msg})") from error
    return rows


def versions() -> dict[str, str]:
    import peft
    import transformers
    import trl

    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "trl": trl.__version__,
        "peft": peft.__version__,
    }


def write_metadata(folder: Path, metadata: dict[str, Any]) -> None:
    text = json.dumps({"format": METADATA_FORMAT, **metadata}, indent=2, sort_keys=True)
    (folder / METADATA_FILE).write_text(text + "\n", encoding="utf-8")


def read_metadata(folder: Path) -> dict[str, Any]:
    path = Path(folder) / METADATA_FILE
    if not path.exists():
        return {}
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def count_parameters(model: torch.nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


def remove_checkpoints(folder: Path) -> None:
    if folder.is_dir():
        shutil.rmtree(folder)
