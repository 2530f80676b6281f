"""Checks for notebook 05 (training)."""
import math

from . import check, check_prediction, check_written, is_number, require


def check_schedule(my_factor) -> bool:
    """05.1: my_factor(step, warmup, total), checked against bertgen_mini.train.warmup_linear_decay."""
    from ..train import warmup_linear_decay

    def test():
        for warmup, total in ((10, 100), (1, 7)):
            reference = warmup_linear_decay(warmup, total)
            for step in range(total + 20):
                got = my_factor(step, warmup, total)
                if step >= total:
                    hint = "after `total` steps the factor stays at 0, never below"
                elif step < warmup:
                    hint = "during warmup the factor is (step + 1) / warmup"
                else:
                    hint = "after warmup a straight line falls from 1 at step `warmup` to 0 at step `total`"
                require(is_number(got) and math.isclose(got, reference(step), abs_tol=1e-12),
                        f"warmup={warmup}, total={total}, step {step}: got {got!r}, expected {reference(step)}: "
                        f"{hint}.")
        return "your schedule matches bertgen_mini.train.warmup_linear_decay."
    return check("05.1", test, my_factor)


def check_step_loss_prediction(predicted_loss) -> bool:
    """05.2: the loss of a step of two micro-batches: 10 label tokens with mean loss 2.0, 30 with mean loss 1.0."""
    import torch

    token_losses = torch.cat([torch.full((10,), 2.0), torch.full((30,), 1.0)])   # every label token of the step
    truth = lambda: round(float(token_losses.sum() / token_losses.numel()), 4)
    hint = {1.5: "That is the mean of the two means, which weighs a token of the small micro-batch three times as "
                 "much as one of the large."}
    return check_prediction("05.2", predicted_loss, truth, "The step divides the sum over all its label tokens by "
                            "their number N: every token weighs the same, whichever micro-batch it is in.",
                            close=1e-3, hint=hint)


def check_shard_prediction(predicted_batches) -> bool:
    """05.4: how many batches rank 1 of 2 gets from 64 pairs in batches of 8 (no shuffling)."""
    from ..data import Pair, Seq2SeqBatches
    from ..paths import default_bert_dir
    from ..tokenizer_wordpiece import BertTokenizer

    def batches_of_rank_1():
        pairs = [Pair(f"source {i} .", f"target {i} .") for i in range(64)]
        shard = Seq2SeqBatches(pairs, BertTokenizer.from_pretrained(default_bert_dir()), batch_size=8,
                               shuffle=False, rank=1, world_size=2)
        return len(shard.batch_indices())

    hint = {8: "That is every batch of the epoch: the two processes share them.",
            32: "That counts pairs, not batches."}
    return check_prediction("05.4", predicted_batches, batches_of_rank_1, "64 pairs make 8 batches of 8; "
                            "each of the 2 processes takes every 2nd batch.", hint=hint)


def check_precision_answer(answer) -> bool:
    """05.3 (written): why fp16 needs a gradient scaler and bf16 does not."""
    return check_written("05.3", answer, [
        "fp16 has 5 exponent bits (smallest normal number about 6e-5): small gradients round to zero and those "
        "weights stop learning.",
        "The scaler multiplies the loss by a large factor before backward, so the gradients land in fp16's range, "
        "and divides them again before the optimizer step (skipping a step that overflowed).",
        "bf16 keeps fp32's 8 exponent bits: the same range with fewer digits, so gradients do not underflow and no "
        "scaler is needed."])


EXERCISES = {"05.1": (check_schedule, "my_factor", "function"),
             "05.2": (check_step_loss_prediction, "predicted_loss", "value"),
             "05.3": (check_precision_answer, "precision_answer", "written"),
             "05.4": (check_shard_prediction, "predicted_batches", "value")}
