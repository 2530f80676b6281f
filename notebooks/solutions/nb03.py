"""Solutions to notebook 03 (warm-starting)."""
import torch


def pretrained_fraction(report):
    """03.1: parameters loaded from the checkpoint / parameters in the model (the unused ones are not in it)."""
    loaded = sum(report.numels[n] for n in report.loaded)
    new = sum(report.numels[n] for n in report.new)
    return loaded / (loaded + new)


def shift_right(labels, pad_token_id, start_token_id):
    """03.2: the decoder's input for teacher forcing: start token, then the labels without their last one,
    -100 (ignored by the loss) turned into padding."""
    shifted = torch.full_like(labels, start_token_id)
    shifted[:, 1:] = labels[:, :-1]
    return shifted.masked_fill(shifted == -100, pad_token_id)


# 03.3
copy_pitfall_answer = """With decoder_input_ids equal to the unshifted labels, the decoder reads y_t at position t
and is asked to predict y_t: the answer is in its own input, one causal-attention step away, so it learns to copy its
input token and the loss falls fast without the model learning anything about the source. At generation time there
is no target to copy: the decoder reads only what it has written so far, so it repeats its last token or writes
nonsense. Passing only labels lets the model shift them itself: position t then reads y_(t-1) and must predict y_t
from the source and the tokens before it."""
