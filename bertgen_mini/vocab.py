"""Growing a model's vocabulary to match its tokenizer: one more embedding row (and LM-head row and bias) for each
token a tokenizer appended after its vocabulary with `add_tokens`, as transformers' `resize_token_embeddings`.

References:
- Hewitt, "Initializing New Word Embeddings for Pretrained Language Models" (2021,
  nlp.stanford.edu/~johnhew/vocab-expansion.html): start a new word at the mean of the old embeddings.
- Hugging Face transformers' `PreTrainedModel.resize_token_embeddings` (v5, `mean_resizing=True`, its default).

Why the mean. With the LM head tied to the embeddings, the logit of token i after hidden state h is z_i = h.e_i + b_i.
A new row at the means, e = mean(e_i) and b = mean(b_i), has logit mean(z_i), and by Jensen's inequality
exp(mean z_i) <= mean exp(z_i): the new token takes at most 1/(V+1) of the probability, so every distribution the
pretrained model gives barely moves (a random row can have a large logit and take mass from every word). On the
input side the new token starts as an average word.

Against transformers 5.24: it draws each new row from a normal distribution around the same mean with covariance
1e-9 times that of the old rows, a sample about 3e-5 of the rows' spread away from the mean. Taking the mean itself
is the same start without a random draw, so the seed's other draws (a random half, a random cross-attention) do not
depend on whether a token was added. For BertGenerationDecoder it leaves the new LM-head biases at 0 (re-tying
`lm_head.decoder.bias` to `lm_head.bias` pads it with zeros after the resize); here they take the old biases' mean,
which the bound above needs. A bert2bert built from BERT has a new, all-zero bias, so both give 0 there.
"""
import torch
from torch import nn

from .encoder_decoder import EncoderDecoderModel


def resize_token_embeddings(model: nn.Module, vocab_size: int) -> None:
    """Give `model` (an EncoderDecoderModel, a BertGenerationEncoder, a BertGenerationDecoder or a GPT2LMHeadModel)
    `vocab_size` rows in every word-embedding table, LM head and LM-head bias, in place: rows kept up to vocab_size,
    new rows at the mean of the old ones (see the module docstring), each half's config.vocab_size set. Shared
    tensors stay shared (the LM head tied to the embeddings, bertshare's one table for both halves). Call it with
    len(tokenizer) after tokenizer.add_tokens, before making the optimizer (it replaces the parameters). A pair whose
    halves read different vocabularies (bert2gpt) is resized one half at a time: resize_token_embeddings(model.encoder,
    len(source_tokenizer))."""
    halves = [model.encoder, model.decoder] if isinstance(model, EncoderDecoderModel) else [model]
    embeddings = [half.get_input_embeddings() for half in halves]
    heads = [half.get_output_embeddings() for half in halves if hasattr(half, "lm_head")]  # GPT-2's has no bias
    indexed_by_token = [module.weight for module in embeddings + heads] + [head.bias for head in heads]
    for old in {id(p): p for p in indexed_by_token if p is not None}.values():  # each shared tensor once
        replace_parameter(model, old, nn.Parameter(resized(old.detach(), vocab_size), old.requires_grad))
    for module in embeddings:
        module.num_embeddings = vocab_size
    for head in heads:
        head.out_features = vocab_size
    for half in halves:
        half.config.vocab_size = vocab_size


def resized(rows: torch.Tensor, count: int) -> torch.Tensor:
    """(V, ...) -> (count, ...): the first `count` rows, then copies of the mean row (averaged in fp32) up to count."""
    kept = rows[:count]
    mean = rows.float().mean(0, keepdim=True).to(rows.dtype)
    return torch.cat([kept, mean.expand(count - len(kept), *rows.shape[1:])])


def replace_parameter(model: nn.Module, old: nn.Parameter, new: nn.Parameter) -> None:
    """Put `new` wherever `model` holds `old`, under every name (ties and aliases included)."""
    for module in model.modules():
        for name, param in list(module.named_parameters(recurse=False, remove_duplicate=False)):
            if param is old:
                setattr(module, name, new)
