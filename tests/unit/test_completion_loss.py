"""The SFT loss over the answer positions alone equals the model's own causal-LM loss over
the whole sequence (the LM head projects a few dozen positions instead of every one), for
rows whose answers start and end at different places, with padding, and with the token
count of an accumulated step; and its gradients are the same."""

from __future__ import annotations

import pytest
import torch

from bubblescope.agent.vlm import load_model
from bubblescope.trainer.completion_loss import IGNORED, completion_loss


@pytest.fixture(scope="module")
def model(tiny_vlm):
    return load_model(tiny_vlm).train()


def _batch(vocab: int) -> dict:
    """Three rows of 40 tokens: answers of 5, 9 and 3 tokens at different offsets, the last
    row right-padded."""
    generator = torch.Generator().manual_seed(7)
    input_ids = torch.randint(10, vocab, (3, 40), generator=generator)
    attention = torch.ones_like(input_ids)
    labels = torch.full_like(input_ids, IGNORED)
    for row, (start, end) in enumerate(((30, 35), (25, 34), (20, 23))):
        labels[row, start:end] = input_ids[row, start:end]
    attention[2, 23:] = 0
    return {"input_ids": input_ids, "attention_mask": attention, "labels": labels}


def _gradients(model) -> list[torch.Tensor]:
    grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    model.zero_grad()
    return grads


def test_the_answer_only_loss_equals_the_whole_sequence_loss(model):
    batch = _batch(model.config.get_text_config().vocab_size)
    ours, _ = completion_loss(model, dict(batch))
    ours.backward()
    ours_grads = _gradients(model)
    theirs = model(**batch, use_cache=False).loss
    theirs.backward()
    theirs_grads = _gradients(model)
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-5)
    assert len(ours_grads) == len(theirs_grads) > 0
    for a, b in zip(ours_grads, theirs_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_an_accumulated_step_divides_by_its_own_token_count(model):
    batch = _batch(model.config.get_text_config().vocab_size)
    mean, _ = completion_loss(model, dict(batch))
    learned = int((batch["labels"][:, 1:] != IGNORED).sum())
    assert learned == 5 + 9 + 3  # each answer token is predicted from the one before it
    summed, _ = completion_loss(model, dict(batch), num_items_in_batch=torch.tensor(4 * learned))
    assert summed.item() == pytest.approx(mean.item() / 4, rel=1e-5)
