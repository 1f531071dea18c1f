"""Model holders for serving and evaluation: load a trained folder once, then generate or score.

No locking here: a holder is used by one thread at a time (the inference worker swaps whole
holders, see training/inference.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import cast

import torch
from transformers import AutoTokenizer, GenerationMixin, PreTrainedModel, PreTrainedTokenizerBase

from training.reward import encode_pair, load_reward_model, prepare_reward_tokenizer, reward_max_length
from training.runtime import configure_threads, quiet_progress_bars, read_metadata
from training.sft import load_policy_model


def _on_device(model: PreTrainedModel) -> PreTrainedModel:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    # transformers wraps .to() in a decorator whose signature mypy misreads.
    moved: PreTrainedModel = model.to(device)  # type: ignore[arg-type]
    return moved.eval()


@dataclass
class PolicyModel:
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    folder: Path

    @classmethod
    def load(cls, folder: Path) -> PolicyModel:
        configure_threads()
        quiet_progress_bars()
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        # Prompts of different lengths share a batch; generation continues from the right end.
        tokenizer.padding_side = "left"
        model = _on_device(load_policy_model(Path(folder)))
        return cls(model=model, tokenizer=tokenizer, folder=Path(folder))

    @torch.no_grad()
    def generate(
        self,
        prompts: list[str],
        n: int = 1,
        temperature: float = 0.8,
        max_new_tokens: int = 128,
        seed: int | None = None,
        batch_size: int = 8,
    ) -> list[list[str]]:
        """`n` replies per prompt, each rendered as a single user turn with the chat template.

        temperature 0 decodes greedily (the `n` replies are then identical). With a seed the
        result is reproducible for the same prompts, batch size and hardware; it reseeds torch's
        global generator, which is fine in a worker process that does nothing else random.
        """
        if n < 1:
            raise ValueError("n must be at least 1")
        if seed is not None:
            torch.manual_seed(seed)
        sample = temperature > 0
        options = {"do_sample": sample, "temperature": temperature} if sample else {"do_sample": False}
        # Greedy decoding gives one answer; transformers refuses to return it n times, so it is copied.
        per_prompt = n if sample else 1
        texts = [
            self.tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
            )
            for prompt in prompts
        ]
        results: list[list[str]] = []
        for start in range(0, len(texts), batch_size):
            batch = self.tokenizer(
                texts[start : start + batch_size], return_tensors="pt", padding=True, add_special_tokens=False
            ).to(self.model.device)
            output = cast(GenerationMixin, self.model).generate(
                **batch,
                max_new_tokens=max_new_tokens,
                num_return_sequences=per_prompt,
                pad_token_id=self.tokenizer.pad_token_id,
                **options,
            )
            replies = self.tokenizer.batch_decode(
                output[:, batch["input_ids"].shape[1] :], skip_special_tokens=True
            )
            groups = [replies[i : i + per_prompt] for i in range(0, len(replies), per_prompt)]
            results.extend(group if sample else group * n for group in groups)
        return [[reply.strip() for reply in group] for group in results]


@dataclass
class RewardModel:
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    folder: Path
    max_length: int

    @classmethod
    def load(cls, folder: Path) -> RewardModel:
        configure_threads()
        quiet_progress_bars()
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        prepare_reward_tokenizer(tokenizer)
        model = _on_device(load_reward_model(Path(folder)))
        model.config.pad_token_id = tokenizer.pad_token_id
        # Score with the length the model was trained with, not the tokenizer's ceiling.
        trained = read_metadata(Path(folder)).get("max_length")
        max_length = int(trained) if trained else reward_max_length(tokenizer, 512)
        return cls(model=model, tokenizer=tokenizer, folder=Path(folder), max_length=max_length)

    @torch.no_grad()
    def score(self, prompt: str, responses: list[str], batch_size: int = 16) -> list[float]:
        """One scalar per response: higher means preferred for this prompt."""
        return self.score_pairs([(prompt, response) for response in responses], batch_size=batch_size)

    @torch.no_grad()
    def score_pairs(self, pairs: list[tuple[str, str]], batch_size: int = 16) -> list[float]:
        """One scalar per (prompt, response), in the order given."""
        return self._forward(pairs, batch_size=batch_size, features=False)[0]

    @torch.no_grad()
    def score_with_features(
        self, prompt: str, responses: list[str], batch_size: int = 16
    ) -> tuple[list[float], list[list[float]]]:
        """Scores, and each response's features: the representation the scalar head reads (for a
        BERT, the pooled [CLS]; for a decoder, the last token's hidden state). The score is a
        linear function of them, which is what makes them useful to active learning: how much a
        judgment on (a, b) can move the head grows with the distance between a's and b's."""
        return self._forward(
            [(prompt, response) for response in responses], batch_size=batch_size, features=True
        )

    def _head(self) -> torch.nn.Linear:
        # The last linear layer that maps to the score (BERT's `classifier`, a decoder's `score`,
        # RoBERTa's `out_proj`).
        labels = self.model.config.num_labels
        heads = [
            m for m in self.model.modules() if isinstance(m, torch.nn.Linear) and m.out_features == labels
        ]
        if not heads:
            raise ValueError(f"{self.folder}: no linear score head to read features from")
        return heads[-1]

    def _forward(
        self, pairs: list[tuple[str, str]], *, batch_size: int, features: bool
    ) -> tuple[list[float], list[list[float]]]:
        encoded = [encode_pair(self.tokenizer, p, r, self.max_length) for p, r in pairs]
        pad_id = self.tokenizer.pad_token_id
        # Batches are cut from the pairs sorted by length: every row is padded to the longest in
        # its batch, and with mixed lengths (best-of-n candidates, evaluation pairs) that padding
        # was a third or more of the compute. The mask keeps a score independent of its batch (to
        # float rounding, about 1e-7).
        order = sorted(range(len(encoded)), key=lambda index: len(encoded[index]))
        scores = [0.0] * len(encoded)
        vectors: list[list[float]] = [[] for _ in encoded]
        captured: list[torch.Tensor] = []
        hook = (
            self._head().register_forward_hook(lambda _module, inputs, _output: captured.append(inputs[0]))
            if features
            else None
        )
        try:
            for start in range(0, len(order), batch_size):
                indices = order[start : start + batch_size]
                batch = [encoded[index] for index in indices]
                width = max(len(ids) for ids in batch)
                # Right padding with a mask, as in training (TRL's DataCollatorForPreference).
                input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
                attention = torch.zeros((len(batch), width), dtype=torch.long)
                for row, ids in enumerate(batch):
                    input_ids[row, : len(ids)] = torch.tensor(ids)
                    attention[row, : len(ids)] = 1
                captured.clear()
                logits = self.model(
                    input_ids=input_ids.to(self.model.device), attention_mask=attention.to(self.model.device)
                ).logits
                for index, value in zip(indices, logits[:, 0].float().cpu(), strict=True):
                    scores[index] = float(value)
                if features:
                    hidden = captured[-1].float().cpu()
                    if hidden.dim() == 3:  # a decoder's head reads every position; its score is the last
                        hidden = hidden[torch.arange(len(batch)), attention.sum(dim=1) - 1]
                    for index, vector in zip(indices, hidden.tolist(), strict=True):
                        vectors[index] = vector
        finally:
            if hook is not None:
                hook.remove()
        return scores, vectors
