"""Chat templates, as plain strings so that importing them costs nothing.

SFT with assistant-only loss needs `{% generation %}` markers around what the assistant says, so
that `apply_chat_template(..., return_assistant_tokens_mask=True)` can tell those tokens apart.
The markers change nothing in the rendered text, so a patched template renders exactly like the
original and the saved model can keep either.
"""

from __future__ import annotations

SMOLLM2_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"

# As shipped in SmolLM2-135M-Instruct (and in the GGUF's tokenizer.chat_template), byte for byte:
# the patch below is picked by comparing a tokenizer's template with this string.
SMOLLM2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, "
    "trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def chatml_training_template(default_system: str | None = None) -> str:
    """ChatML with generation markers around each assistant reply and its `<|im_end|>`.

    The end-of-turn token sits inside the markers so that the model is trained to stop.
    """
    system = ""
    if default_system is not None:
        system = (
            "{% if loop.first and messages[0]['role'] != 'system' %}"
            "{{ '<|im_start|>system\n" + default_system + "<|im_end|>\n' }}{% endif %}"
        )
    return (
        "{% for message in messages %}" + system + "{% if message['role'] == 'assistant' %}"
        "{{ '<|im_start|>assistant\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}"
        "{% endgeneration %}{{ '\n' }}"
        "{% else %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
        "{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
    )


# Templates that lack generation markers and that TRL cannot patch itself, mapped to a patched
# twin that renders identically (tests/test_templates.py checks that it does).
TRAINING_TEMPLATES: dict[str, str] = {SMOLLM2_TEMPLATE: chatml_training_template(SMOLLM2_SYSTEM)}
