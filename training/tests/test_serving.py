import pytest
import torch

from training.config import RewardTrainConfig
from training.reward import train_reward
from training.serving import PolicyModel, RewardModel

PROMPTS = ["what color is the sky ?", "what color is the coal ?", "hi"]


@pytest.fixture(scope="module")
def policy(trained_policy):
    return PolicyModel.load(trained_policy.output_dir)


@pytest.fixture(scope="module")
def reward(trained_reward):
    return RewardModel.load(trained_reward.output_dir)


def test_it_generates_n_replies_per_prompt(policy):
    replies = policy.generate(PROMPTS, n=3, temperature=1.0, max_new_tokens=8, seed=0, batch_size=2)
    assert len(replies) == 3 and all(len(group) == 3 for group in replies)
    assert all(isinstance(reply, str) for group in replies for reply in group)
    # Chat markup never leaks into a reply.
    assert not any("<|im_" in reply for group in replies for reply in group)


def test_it_samples_reproducibly_from_a_seed(policy):
    def sample(seed):
        return policy.generate(PROMPTS, n=2, temperature=1.0, max_new_tokens=8, seed=seed)

    assert sample(1) == sample(1)
    assert sample(1) != sample(2)


def test_it_answers_like_its_demonstrations(policy):
    # Greedy decoding of the trained policy follows the demonstrations' pattern.
    [[reply, same]] = policy.generate(["what color is the sky ?"], n=2, temperature=0, max_new_tokens=16)
    assert reply.startswith("thanks for asking") and same == reply


def test_it_scores_a_batch_exactly_as_one_at_a_time(reward):
    responses = ["please the sky is blue", "the sky is blue really very truly indeed also", "thanks", ""]
    batched = reward.score("what color is the sky ?", responses, batch_size=4)
    single = [reward.score("what color is the sky ?", [response], batch_size=1)[0] for response in responses]
    assert len(batched) == 4
    assert batched == pytest.approx(single, abs=1e-5)
    # And the trained rule shows: the polite reply scores above the padded impolite one.
    assert batched[0] > batched[1]


def test_it_returns_scores_in_input_order_across_length_sorted_batches(reward):
    # Batches are cut from the pairs sorted by length; the scores must still come back in order.
    responses = ["the sky is blue really very truly indeed also", "ok", "please the sky is blue", "", "hi"]
    pairs = [("what color is the sky ?", response) for response in responses]
    batched = reward.score_pairs(pairs, batch_size=2)
    single = [reward.score_pairs([pair], batch_size=1)[0] for pair in pairs]
    assert batched == pytest.approx(single, abs=1e-5)
    assert len(set(batched)) == len(responses)


def _head_of(model: RewardModel) -> torch.nn.Linear:
    return model.model.classifier if hasattr(model.model, "classifier") else model.model.score


def test_it_returns_the_features_its_score_head_reads(reward):
    responses = ["please the sky is blue", "the sky is blue really very truly indeed also", "thanks", ""]
    scores, features = reward.score_with_features("what color is the sky ?", responses, batch_size=3)
    assert scores == pytest.approx(reward.score("what color is the sky ?", responses), abs=1e-5)
    head = _head_of(reward)
    assert all(len(vector) == head.in_features for vector in features)
    # The score is the head applied to the features, so the features are the score's own inputs.
    recomputed = head(torch.tensor(features)).squeeze(-1).tolist()
    assert recomputed == pytest.approx(scores, abs=1e-4)
    # And they do not depend on the batch a response is scored in.
    single = [
        reward.score_with_features("what color is the sky ?", [r], batch_size=1)[1][0] for r in responses
    ]
    assert [v for vector in single for v in vector] == pytest.approx(
        [v for vector in features for v in vector], abs=1e-5
    )


def test_it_scores_with_a_causal_lm_reward_model(tmp_path, snapshot_dir, tiny_lm):
    # A decoder base reads the conversation through its chat template and pads on the right.
    result = train_reward(
        RewardTrainConfig(
            data_dir=snapshot_dir, base=tiny_lm, out=tmp_path, max_steps=4, batch_size=8, lr=1e-3
        )
    )
    model = RewardModel.load(result.output_dir)
    responses = ["please the sky is blue", "the sky is blue really very truly indeed", "ok"]
    batched = model.score("what color is the sky ?", responses, batch_size=3)
    single = [model.score("what color is the sky ?", [response])[0] for response in responses]
    assert batched == pytest.approx(single, abs=1e-5)
    assert len(set(batched)) == 3
    # A decoder's head reads every position and its score is the last real token's: so are the
    # features, padding or not.
    scores, features = model.score_with_features("what color is the sky ?", responses, batch_size=3)
    recomputed = _head_of(model)(torch.tensor(features)).squeeze(-1).tolist()
    assert recomputed == pytest.approx(scores, abs=1e-4) and scores == pytest.approx(batched, abs=1e-5)
