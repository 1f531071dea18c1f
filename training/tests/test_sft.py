import json

import pytest
from datasets import Dataset
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer

from training.runtime import read_jsonl, sha256_file
from training.sft import encode_conversation, sft_max_length, train_sft, training_template, validation_loss


def test_it_fine_tunes_a_policy_that_fits_held_out_demonstrations(trained_policy, tiny_lm, snapshot_dir):
    validation = snapshot_dir / "sft_validation.jsonl"
    before = validation_loss(tiny_lm, validation)
    after = validation_loss(trained_policy.output_dir, validation)
    # An untrained model is near uniform over its ~500 tokens (ln 500 = 6.2); the replies
    # follow a template and a lookup table, so a few epochs cut the loss well below that.
    assert before > 5.0
    assert after < before - 2.0
    assert trained_policy.steps == 32  # 64 demonstrations / 8 per batch * 4 epochs
    assert trained_policy.metadata["loss_mode"] == "assistant_only"


def test_it_writes_a_self_contained_artifact(trained_policy, tiny_lm, snapshot_dir):
    folder = trained_policy.output_dir
    metadata = json.loads((folder / "flywheel.json").read_text())
    assert metadata["kind"] == "policy" and metadata["base"] == str(tiny_lm) and metadata["lora"] is False
    assert metadata["data_files"] == {"sft_train.jsonl": sha256_file(snapshot_dir / "sft_train.jsonl")}
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    base_tokenizer = AutoTokenizer.from_pretrained(tiny_lm, local_files_only=True)
    assert tokenizer.chat_template == base_tokenizer.chat_template
    AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
    assert not (folder / "checkpoints").exists()


def test_it_supervises_the_same_tokens_as_trl(tiny_lm, snapshot_dir, tmp_path):
    # validation_loss tokenizes by itself; it must agree with what SFTTrainer trains on.
    tokenizer = AutoTokenizer.from_pretrained(tiny_lm, local_files_only=True)
    rows = read_jsonl(snapshot_dir / "sft_validation.jsonl")[:6]
    trainer = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(tiny_lm, local_files_only=True),
        args=SFTConfig(
            output_dir=str(tmp_path), assistant_only_loss=True, max_length=64, bf16=False, report_to=[]
        ),
        train_dataset=Dataset.from_list([{"messages": row["messages"]} for row in rows]),
        processing_class=tokenizer,
    )
    template = training_template(tokenizer)
    ours = [
        encode_conversation(
            tokenizer, row["messages"], template=template, max_length=sft_max_length(tokenizer, 64)
        )
        for row in rows
    ]
    assert [ids for ids, _ in ours] == trainer.train_dataset["input_ids"]
    assert [labels for _, labels in ours] == trainer.train_dataset["labels"]


def test_it_trains_completion_only_when_the_template_has_no_markers(tmp_path, make_sft_config, tiny_lm):
    base = tmp_path / "base"
    tokenizer = AutoTokenizer.from_pretrained(tiny_lm, local_files_only=True)
    tokenizer.chat_template = (
        "{% for m in messages %}{{ m['role'] + ': ' + m['content'] + '\n' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}"
    )
    tokenizer.save_pretrained(base)
    AutoModelForCausalLM.from_pretrained(tiny_lm, local_files_only=True).save_pretrained(base)

    result = train_sft(make_sft_config(tmp_path / "out", base=base, max_steps=4))
    assert result.metadata["loss_mode"] == "completion_only"
    assert result.steps == 4


def test_it_merges_lora_into_a_plain_model(tmp_path, make_sft_config, tiny_lm):
    result = train_sft(make_sft_config(tmp_path / "out", lora=True, lora_r=4, max_steps=6, lr=1e-2))
    folder = result.output_dir
    assert result.lora and json.loads((folder / "flywheel.json").read_text())["lora"] is True
    assert not (folder / "adapter_config.json").exists()
    merged = load_file(folder / "model.safetensors")
    base = load_file(tiny_lm / "model.safetensors")
    assert merged.keys() == base.keys()
    changed = [name for name in base if not (merged[name] == base[name]).all()]
    # LoRA touches the linear layers only: embeddings and norms stay as they were.
    assert changed and all("proj" in name for name in changed)


def test_it_refuses_an_empty_export(tmp_path, make_sft_config):
    (tmp_path / "sft_train.jsonl").write_text("")
    with pytest.raises(ValueError, match="no demonstrations"):
        train_sft(make_sft_config(tmp_path / "out", data_dir=tmp_path))
