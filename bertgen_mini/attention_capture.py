"""Attention maps of one sentence pair, captured from an EncoderDecoderModel, and two numbers that summarise them.

Three kinds of attention live in a bert2bert model, each a softmax over its keys (every row sums to one):

    encoder   self-attention  source -> source      (nh, S, S)
    decoder   self-attention  target -> earlier target (causal)  (nh, T, T)
    cross     attention       target -> source      (nh, T, S)

`AttentionCapture` holds all three for one example, per layer, with the token strings, and is what every plot in
`bertgen_mini.viz` and the explorer take. Row t of the decoder's maps is the step that *writes* target token t
while reading decoder input t (the start token, then the target shifted right).

A generated sentence is captured by generating it first and then running the decoder over it teacher-forced: with
dropout off and a causal decoder, position t sees exactly what generation step t saw (cached keys and values are the
same numbers), and for beam search this gives the attention of the hypothesis that won, not of a discarded beam.

References: Bahdanau, Cho & Bengio 2015 (attention as a soft alignment); Rush, "The Annotated Transformer"
(keeping per-layer, per-head maps for plotting); bertviz's `model_view` input format (Vig 2019).
"""
import math
from dataclasses import dataclass

import torch

KINDS = ("encoder", "decoder", "cross")


@dataclass
class AttentionCapture:
    """The attention probabilities of one source/target pair, padding removed."""

    source_tokens: list          # S strings: what the encoder read
    decoder_tokens: list         # T strings: what the decoder read (start token, then the target shifted right)
    target_tokens: list          # T strings: what each decoder step wrote (the target, ending in the end token)
    encoder: tuple               # per layer (nh, S, S)
    decoder: tuple               # per layer (nh, T, T)
    cross: tuple                 # per layer (nh, T, S)
    sentence: str = ""           # the source text, for titles

    @property
    def num_layers(self) -> int:
        return len(self.cross)

    @property
    def num_heads(self) -> int:
        return self.cross[0].shape[0]

    def maps(self, kind: str) -> tuple:
        """The per-layer (nh, queries, keys) tensors of one kind: "encoder", "decoder" or "cross"."""
        if kind not in KINDS:
            raise ValueError(f"kind={kind!r}: pick one of {KINDS}.")
        return getattr(self, kind)

    def select(self, kind: str, layer: int, head="mean") -> torch.Tensor:
        """One (queries, keys) map: a layer (negative counts from the top) and a head index or "mean"."""
        maps = self.maps(kind)
        if not -len(maps) <= layer < len(maps):
            raise IndexError(f"layer {layer} is out of range: this model has {len(maps)} layers "
                             f"(0..{len(maps) - 1}, or -1 for the last).")
        probs = maps[layer]  # (nh, Q, K)
        if head == "mean":
            return probs.mean(0)
        if isinstance(head, bool) or not isinstance(head, int) or not -len(probs) <= head < len(probs):
            raise IndexError(f"head {head!r} is out of range: each layer has {len(probs)} heads "
                             f"(0..{len(probs) - 1}), or pass head='mean' for their average.")
        return probs[head]

    def query_tokens(self, kind: str) -> list:
        """Labels of the rows of a `kind` map: source tokens for the encoder, written target tokens otherwise."""
        self.maps(kind)  # checks the kind
        return self.source_tokens if kind == "encoder" else self.target_tokens

    def key_tokens(self, kind: str) -> list:
        """Labels of the columns: source tokens, or for decoder self-attention the tokens the decoder has read."""
        self.maps(kind)
        return self.decoder_tokens if kind == "decoder" else self.source_tokens

    def to_bertviz(self) -> dict:
        """Keyword arguments for bertviz: `model_view(**capture.to_bertviz())`. Per layer (1, nh, T, S) tensors
        for `encoder_attention`, `decoder_attention`, `cross_attention`, with `encoder_tokens` and
        `decoder_tokens` (the decoder's input tokens, whose count matches the decoder maps)."""
        return {"encoder_attention": tuple(a[None] for a in self.encoder),
                "decoder_attention": tuple(a[None] for a in self.decoder),
                "cross_attention": tuple(a[None] for a in self.cross),
                "encoder_tokens": list(self.source_tokens), "decoder_tokens": list(self.decoder_tokens)}


def captures_from_outputs(outputs, input_ids, attention_mask, sequences, to_tokens=None, eos_token_id=None,
                          sentences=None) -> list:
    """Split a batched forward pass into one AttentionCapture per example, padding cut away.

    outputs: a Seq2SeqLMOutput of `model(..., decoder_input_ids=sequences[:, :-1], output_attentions=True)`.
    attention_mask (B, S) marks real source tokens; sequences (B, 1 + T) is the start token then the target; rows
    end at the first `eos_token_id` after the start (the rest is padding). to_tokens maps a list of ids to strings
    (default: the ids written as strings); sentences, one str per example, go into the titles.
    """
    if outputs.cross_attentions is None or outputs.encoder_attentions is None:
        raise ValueError("These outputs hold no attention probabilities: run the model with "
                         "output_attentions=True (or use capture_attentions, which does).")
    to_tokens = to_tokens or (lambda ids: [str(i) for i in ids])
    captures = []
    for b in range(sequences.shape[0]):
        src = torch.ones_like(input_ids[b], dtype=torch.bool) if attention_mask is None else attention_mask[b].bool()
        T = target_length(sequences[b], eos_token_id)
        captures.append(AttentionCapture(
            source_tokens=to_tokens(input_ids[b][src].tolist()),
            decoder_tokens=to_tokens(sequences[b, :T].tolist()),
            target_tokens=to_tokens(sequences[b, 1:T + 1].tolist()),
            encoder=tuple(a[b][:, src][:, :, src].float().cpu() for a in outputs.encoder_attentions),
            decoder=tuple(a[b, :, :T, :T].float().cpu() for a in outputs.decoder_attentions),
            cross=tuple(a[b, :, :T][:, :, src].float().cpu() for a in outputs.cross_attentions),
            sentence=sentences[b] if sentences else ""))
    return captures


def target_length(sequence, eos_token_id) -> int:
    """How many tokens of `sequence` (start token first) were written, up to and including the first end token."""
    written = sequence[1:]
    ends = (written == eos_token_id).nonzero() if eos_token_id is not None else []
    return int(ends[0]) + 1 if len(ends) else len(written)


@torch.no_grad()
def capture_from_ids(model, input_ids, attention_mask, sequences, to_tokens=None, sentences=None) -> list:
    """Teacher-forced capture from ids: input_ids and attention_mask (B, S), sequences (B, 1 + T) = start token
    then target. to_tokens (list of ids -> list of str) defaults to the ids as strings. Returns B captures."""
    was_training = model.training
    model.eval()  # dropout would make the maps random and rows no longer the model's real attention
    try:
        outputs = model(input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=sequences[:, :-1],
                        output_attentions=True)
    finally:
        model.train(was_training)
    return captures_from_outputs(outputs, input_ids, attention_mask, sequences, to_tokens,
                                 model.config.eos_token_id, sentences)


def capture_attentions(model, tokenizer, source, target=None, max_new_tokens=64, num_beams=1):
    """Attention of `model` on a source text (str, or a list of str for a batch).

    With `target` (same form as source) the decoder is teacher-forced on it; without, the model generates the
    target first (greedy, or beam search with num_beams > 1). Returns an AttentionCapture (a list for a list).
    """
    sources = [source] if isinstance(source, str) else list(source)
    targets = None if target is None else [target] if isinstance(target, str) else list(target)
    if targets is not None and len(targets) != len(sources):
        raise ValueError(f"{len(sources)} sources but {len(targets)} targets: give one target per source.")
    cfg = model.config
    if cfg.decoder_start_token_id is None or cfg.eos_token_id is None:
        raise ValueError("Set model.config.decoder_start_token_id and eos_token_id (for a BERT vocabulary: the "
                         "[CLS] and [SEP] ids, 101 and 102) so the decoder knows where a target starts and ends.")
    enc = tokenizer(sources, padding=True, return_tensors="pt").to(model.device)
    if targets is None:
        sequences = generated_sequences(model, enc["input_ids"], enc["attention_mask"], max_new_tokens, num_beams)
    else:
        sequences = target_sequences(tokenizer, targets, cfg.decoder_start_token_id, cfg.eos_token_id,
                                     cfg.pad_token_id).to(model.device)
    captures = capture_from_ids(model, enc["input_ids"], enc["attention_mask"], sequences,
                                tokenizer.convert_ids_to_tokens, sources)
    return captures[0] if isinstance(source, str) else captures


def target_sequences(tokenizer, targets, start_id, eos_id, pad_id):
    """Target texts -> (B, 1 + T) ids: start token, the target's tokens, end token, then padding (as training
    builds them: labels are the tokens plus the end id, shifted right behind the start id)."""
    rows = [[start_id] + tokenizer(t, add_special_tokens=False)["input_ids"] + [eos_id] for t in targets]
    sequences = torch.full((len(rows), max(map(len, rows))), pad_id if pad_id is not None else eos_id)
    for i, row in enumerate(rows):
        sequences[i, :len(row)] = torch.tensor(row)
    return sequences


def generated_sequences(model, input_ids, attention_mask, max_new_tokens, num_beams):
    """(B, 1 + T) ids the model writes for the source: start token first, as `generate` returns them."""
    if not hasattr(model, "generate"):
        raise NotImplementedError("This model has no generate(); pass target=... to capture a teacher-forced pass.")
    out = model.generate(input_ids, attention_mask, max_new_tokens=max_new_tokens, num_beams=num_beams,
                         return_dict_in_generate=True)
    return out.sequences


# ---------------------------------------------------------------------------------------------- summaries

def attention_entropy(probs: torch.Tensor) -> torch.Tensor:
    """(..., Q, K) probabilities -> (...) mean entropy of a row, in bits. 0 = all weight on one key;
    log2(K) = spread evenly."""
    plogp = probs * probs.clamp_min(1e-12).log2()
    return -plogp.sum(-1).mean(-1)


def alignment_monotonicity(probs: torch.Tensor) -> torch.Tensor:
    """(..., Q, K) probabilities -> (...) Spearman rank correlation between a row's index and the key it puts most
    weight on. 1 = the focus moves steadily forward (a copy-like, diagonal alignment), about 0 = no order, and 0
    when the focus never moves (a head that always looks at [SEP])."""
    peak = probs.argmax(-1).float()  # (..., Q)
    steps = torch.arange(peak.shape[-1], dtype=torch.float).expand_as(peak)
    return pearson(tied_ranks(steps), tied_ranks(peak))


def tied_ranks(x: torch.Tensor) -> torch.Tensor:
    """Ranks along the last dim, ties sharing their average rank (as Spearman's correlation needs)."""
    below = (x[..., None, :] < x[..., :, None]).sum(-1).float()
    equal = (x[..., None, :] == x[..., :, None]).sum(-1).float()
    return below + (equal - 1) / 2


def pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Correlation along the last dim; 0 where either side is constant."""
    a, b = a - a.mean(-1, keepdim=True), b - b.mean(-1, keepdim=True)
    norm = (a.square().sum(-1) * b.square().sum(-1)).sqrt()
    return torch.where(norm > 0, (a * b).sum(-1) / norm.clamp_min(1e-12), torch.zeros_like(norm))


def attention_stats(capture: AttentionCapture, kind: str = "cross") -> dict:
    """Per-head summaries of one kind of attention: {"entropy": (L, nh) bits, "monotonicity": (L, nh) in [-1, 1],
    "uniform_entropy": bits of an even spread over all keys (the ceiling for rows that see every key)}."""
    maps = torch.stack(capture.maps(kind))  # (L, nh, Q, K)
    return {"entropy": attention_entropy(maps), "monotonicity": alignment_monotonicity(maps),
            "uniform_entropy": math.log2(maps.shape[-1])}
