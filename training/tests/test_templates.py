import pytest
from transformers import AutoTokenizer
from trl.chat_template_utils import is_chat_template_stop_token_trained

from training.sft import encode_conversation, loss_mode, training_template
from training.templates import SMOLLM2_TEMPLATE, TRAINING_TEMPLATES

CONVERSATIONS = [
    [{"role": "user", "content": "hi"}],
    [{"role": "user", "content": "what color is the sky ?"}, {"role": "assistant", "content": "blue ."}],
    [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"},
        {"role": "assistant", "content": "d\nwith a newline"},
    ],
]


@pytest.fixture
def tokenizer(tiny_lm):
    return AutoTokenizer.from_pretrained(tiny_lm, local_files_only=True)


@pytest.mark.parametrize("messages", CONVERSATIONS)
@pytest.mark.parametrize("add_generation_prompt", [False, True])
def test_it_patches_smollm2_without_changing_what_it_renders(tokenizer, messages, add_generation_prompt):
    def render(template):
        return tokenizer.apply_chat_template(
            messages, chat_template=template, tokenize=False, add_generation_prompt=add_generation_prompt
        )

    assert render(TRAINING_TEMPLATES[SMOLLM2_TEMPLATE]) == render(SMOLLM2_TEMPLATE)


def test_it_trains_smollm2_on_assistant_turns_and_their_end_token(tokenizer):
    tokenizer.chat_template = SMOLLM2_TEMPLATE
    assert loss_mode(tokenizer) == "assistant_only"
    assert is_chat_template_stop_token_trained(tokenizer, chat_template=training_template(tokenizer))


def test_it_masks_everything_but_the_assistant_replies(tokenizer):
    template = training_template(tokenizer)
    ids, labels = encode_conversation(tokenizer, CONVERSATIONS[2], template=template, max_length=1000)
    supervised = tokenizer.decode([token for token in labels if token != -100])
    assert supervised == "b<|im_end|>d\nwith a newline<|im_end|>"
    assert len(ids) == len(labels)


def test_it_falls_back_to_completion_only_for_unknown_templates(tokenizer):
    tokenizer.chat_template = (
        "{% for m in messages %}{{ m['role'] + ': ' + m['content'] + '\n' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}"
    )
    assert training_template(tokenizer) is None
    assert loss_mode(tokenizer) == "completion_only"
    _, labels = encode_conversation(tokenizer, CONVERSATIONS[2], template=None, max_length=1000)
    # Only the last reply is supervised; earlier assistant turns are context.
    assert tokenizer.decode([token for token in labels if token != -100]) == "d\nwith a newline\n"


def test_it_truncates_from_the_right(tokenizer):
    ids, labels = encode_conversation(
        tokenizer, CONVERSATIONS[1], template=training_template(tokenizer), max_length=5
    )
    full, _ = encode_conversation(
        tokenizer, CONVERSATIONS[1], template=training_template(tokenizer), max_length=999
    )
    assert ids == full[:5] and len(labels) == 5


def test_it_requires_a_chat_template(tokenizer):
    tokenizer.chat_template = None
    with pytest.raises(ValueError, match="no chat template"):
        training_template(tokenizer)
