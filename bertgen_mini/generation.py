"""Generation: turn a source batch into target token ids, greedily, by sampling, or by beam search.

    y_t = argmax_v  log p(v | y_<t, x)          (greedy; sampling draws y_t from p instead)

The encoder reads the source once. The decoder then runs one position a step: a key/value cache keeps every
layer's self-attention keys and values (one position longer each step) and its cross-attention keys and values
(computed from the encoder output at the first step, then reused), so each step costs one token's worth of work.
Outputs start with the decoder start token and, once a row has produced the end token, are padded.

References: Sutskever et al. 2014 and Wu et al. 2016 (beam search, length penalty); transformers'
`GenerationMixin.generate` (`_sample`, `_beam_search`), whose token choices this module reproduces exactly.
"""
import math
import warnings
from dataclasses import dataclass

import torch

from .checks import check_field_types, check_ids_tensor
from .kv_cache import KVCache
from .beam_search import beam_search
from .logits_processors import process_scores
from .outputs import ModelOutput


# Beams (or samples) per source at most. Each one keeps a row of scores over the vocabulary and a key/value cache
# per layer, so the cost grows with it; published beam search uses 4 to 10 beams (more hurts: Koehn & Knowles 2017).
# 1,024 is two orders of magnitude above that, and still small enough to refuse a typo (10**6) before it allocates.
MAX_COPIES = 1024


def check_token_id(name: str, value, vocab_size: int) -> None:
    """A token id setting (int or None) inside the decoder's vocabulary: one outside it would be fed back to the
    decoder, and the error would blame the input text."""
    if value is not None and not 0 <= value < vocab_size:
        raise ValueError(f"{name}={value} is outside the decoder's vocabulary (ids 0..{vocab_size - 1}): pass "
                         f"{name}=... or set model.config.{name} to an id of this vocabulary.")


@dataclass
class GenerationSettings:
    """How to generate; the defaults are transformers' (greedy, 20 new tokens)."""

    max_new_tokens: int = 20          # tokens to add after the decoder start token (or the prompt)
    min_new_tokens: int = 0           # the end token is blocked until this many tokens are out
    num_beams: int = 1                # 1: greedy / sampling; more: beam search
    length_penalty: float = 1.0       # beams are ranked by sum(log p) / length ** length_penalty
    early_stopping: bool | str = False  # beam search: True stops once num_beams hypotheses end; "never" never guesses
    no_repeat_ngram_size: int = 0     # >0: no n-gram of this size appears twice in an output
    num_return_sequences: int = 1     # outputs per source (at most num_beams; any number when sampling)
    do_sample: bool = False           # draw tokens from the (processed) distribution instead of taking the best
    temperature: float = 1.0          # sampling: divide logits by this (<1 sharper, >1 flatter)
    top_k: int = 50                   # sampling: keep the k most likely tokens (0 keeps all)
    top_p: float = 1.0                # sampling: keep the smallest set of tokens with this much probability
    generator: torch.Generator | None = None  # sampling: the random stream (None: torch's global one)
    eos_token_id: int | None = None   # a row is finished once it produces this token
    pad_token_id: int | None = None   # fills finished rows (defaults to the end token)
    use_cache: bool = True            # keep keys/values between steps (False: recompute all, same tokens)
    output_scores: bool = False       # return_dict_in_generate: keep each step's processed scores
    output_attentions: bool = False   # return_dict_in_generate: cross-attention of the generated sequences

    def check(self):
        """Raise a TypeError for a setting of the wrong type and a ValueError, saying what to change, for settings
        that cannot work or would silently change the output."""
        check_field_types(self)
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens={self.max_new_tokens}: ask for at least one new token.")
        if self.num_beams < 1:
            raise ValueError(f"num_beams={self.num_beams}: use 1 for greedy search or sampling, more for beams.")
        if self.num_return_sequences < 1:
            raise ValueError(f"num_return_sequences={self.num_return_sequences}: ask for at least one output per "
                             "source.")
        if max(self.num_beams, self.num_return_sequences) > MAX_COPIES:
            raise ValueError(f"num_beams={self.num_beams}, num_return_sequences={self.num_return_sequences}: at most "
                             f"{MAX_COPIES} per source (each keeps scores over the vocabulary and a key/value cache; "
                             "published beam search uses 4 to 10).")
        for name in ("min_new_tokens", "no_repeat_ngram_size", "eos_token_id", "pad_token_id"):
            if getattr(self, name) is not None and getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)} is negative: "
                                 + ("use 0 for none." if "new" in name or "ngram" in name else
                                    "token ids are >= 0 (a negative one would index the vocabulary from its end)."))
        if not math.isfinite(self.length_penalty):
            raise ValueError(f"length_penalty={self.length_penalty}: give a finite number (1.0 divides a beam's "
                             "score by its length, 0 ranks by the score alone).")

    def check_ids(self, vocab_size: int):
        """The end and padding ids inside the decoder's vocabulary (known once the model is)."""
        for name in ("eos_token_id", "pad_token_id"):
            check_token_id(name, getattr(self, name), vocab_size)
        if self.num_beams > 1 and self.num_return_sequences > self.num_beams:
            raise ValueError(f"num_return_sequences={self.num_return_sequences} > num_beams={self.num_beams}: beam "
                             "search can only return the beams it keeps. Raise num_beams.")
        if self.num_beams == 1 and self.num_return_sequences > 1 and not self.do_sample:
            raise ValueError("Greedy search returns one sequence per source, so num_return_sequences > 1 needs "
                             "do_sample=True or num_beams >= num_return_sequences.")
        if self.early_stopping not in (True, False, "never"):
            raise ValueError(f"early_stopping={self.early_stopping!r}: use True, False or 'never'.")
        if self.do_sample and not self.temperature > 0:
            raise ValueError(f"temperature={self.temperature} must be > 0; for the most likely token use "
                             "do_sample=False.")
        if self.top_k < 0 or not 0 < self.top_p <= 1:
            raise ValueError(f"top_k={self.top_k} must be >= 0 and top_p={self.top_p} in (0, 1].")


@dataclass
class GenerateOutput(ModelOutput):
    """What `generate(..., return_dict_in_generate=True)` returns."""

    sequences: torch.Tensor = None            # (B * num_return_sequences, L) token ids, start token first
    sequences_scores: torch.Tensor | None = None  # beam search: (B * num_return_sequences,) length-penalised score
    scores: tuple | None = None               # output_scores: per step (B * beams, V) processed scores
    cross_attentions: tuple | None = None     # output_attentions: per layer (B * num_return_sequences, nh, L-1, S);
                                              # row i is what produced token i+1; rows after the end are zero


class DecoderRunner:
    """Runs the decoder for the next token: the whole prompt at the first step, then only the newest token (with the
    cache), or everything again (without it). Logits are computed for the last position only.

    While searching, each source has `copies` rows (its beams, or its samples). They all start from the same
    prompt, so the first step runs once per source and the cache (cross-attention keys and values included) is
    copied to the other rows: the source is projected once, not once per beam.
    """

    def __init__(self, decoder, encoder_states=None, encoder_mask=None, use_cache=True, copies=1):
        self.decoder, self.copies = decoder, copies
        self.body = decoder.base_model  # the transformer under the LM head: BERT's or GPT-2's
        self.states_once, self.mask_once = encoder_states, encoder_mask           # (B, S, d), (B, S)
        self.states, self.mask = encoder_states, encoder_mask                     # (B * copies, S, d), ...
        if encoder_states is not None and copies > 1:
            self.states = encoder_states.repeat_interleave(copies, dim=0)
            self.mask = encoder_mask.repeat_interleave(copies, dim=0)
        self.cache = KVCache(decoder.config.num_hidden_layers) if use_cache else None

    def logits(self, ids, states, mask):
        out = self.body(ids, encoder_hidden_states=states, encoder_attention_mask=mask, past_key_values=self.cache,
                        use_cache=self.cache is not None)
        return self.decoder.lm_head(out.last_hidden_state[:, -1]).float()  # (N, V)

    def next_logits(self, sequences):
        """sequences (N, t) all tokens so far -> (N, V) float32 logits for token t+1."""
        seen = self.cache.get_seq_length() if self.cache is not None else 0
        if self.cache is not None and seen == 0 and self.copies > 1:
            logits = self.logits(sequences[::self.copies], self.states_once, self.mask_once)  # one row per source
            self.cache.repeat_rows(self.copies)
            return logits.repeat_interleave(self.copies, dim=0)
        return self.logits(sequences[:, seen:], self.states, self.mask)

    def reorder(self, rows):
        """Beam search moved hypotheses: row i now continues old row rows[i]."""
        if self.cache is not None:
            self.cache.reorder(rows)


def greedy_or_sample(runner, prompt, settings):
    """Greedy search (or sampling with do_sample). prompt (N, T) -> ((N, T + new) ids, per-step scores list)."""
    s, sequences = settings, prompt
    unfinished = torch.ones(prompt.shape[0], dtype=torch.bool, device=prompt.device)
    step_scores = []
    for step in range(s.max_new_tokens):
        scores = process_scores(runner.next_logits(sequences), sequences, s, step)  # (N, V)
        if s.output_scores:
            step_scores.append(scores)
        if s.do_sample:
            tokens = torch.multinomial(scores.softmax(dim=-1), 1, generator=s.generator).squeeze(1)
        else:
            tokens = scores.argmax(dim=-1)  # (N,)
        if s.eos_token_id is not None:
            tokens = tokens.masked_fill(~unfinished, s.pad_token_id)  # finished rows only grow padding
        sequences = torch.cat([sequences, tokens[:, None]], dim=1)
        if s.eos_token_id is not None:
            unfinished &= tokens != s.eos_token_id
            if not unfinished.any():
                break
    return sequences, step_scores


def run_search(decoder, prompt, encoder_states, encoder_mask, settings, return_dict):
    """The search the settings ask for, from a (B, T) prompt; encoder_states (B, S, d) or None. Returns the
    (B * num_return_sequences, L) ids, or a GenerateOutput."""
    s = settings
    copies = s.num_beams if s.num_beams > 1 else s.num_return_sequences  # rows per source while searching
    runner = DecoderRunner(decoder, encoder_states, encoder_mask, s.use_cache, copies)
    sequences_scores = None
    if s.num_beams > 1:
        sequences, sequences_scores, step_scores = beam_search(runner, prompt, s)
    else:
        sequences, step_scores = greedy_or_sample(runner, prompt.repeat_interleave(copies, dim=0), s)
    if not return_dict:
        return sequences
    cross = None
    if s.output_attentions and encoder_states is not None:  # num_return_sequences rows per source
        R = s.num_return_sequences
        cross = replay_cross_attentions(decoder, sequences, prompt.shape[1], encoder_states.repeat_interleave(R, 0),
                                        encoder_mask.repeat_interleave(R, 0), s)
    return GenerateOutput(sequences, sequences_scores, tuple(step_scores) if s.output_scores else None, cross)


def replay_cross_attentions(decoder, sequences, prompt_len, encoder_states, encoder_mask, settings):
    """Cross-attention probabilities of finished sequences, per layer (N, nh, L-1, S).

    One teacher-forced pass over sequences (N, L) gives exactly what the steps computed (attention is causal), at
    the cost of one forward instead of keeping every step's tensors through beam reordering. Rows whose output token
    is padding after the end are zeroed.
    """
    out = decoder.base_model(sequences[:, :-1], encoder_hidden_states=encoder_states,
                             encoder_attention_mask=encoder_mask, use_cache=False, output_attentions=True)
    produced = sequences[:, 1:]                                                   # (N, L-1) token each row produced
    live = torch.ones_like(produced, dtype=torch.bool)
    if settings.eos_token_id is not None:
        generated = torch.arange(1, sequences.shape[1], device=sequences.device) >= prompt_len   # (L-1,)
        ended = (produced == settings.eos_token_id) & generated
        live = (ended.cumsum(dim=1) - ended.long()) == 0                          # up to and including the end
    return tuple(probs * live[:, None, :, None] for probs in out.cross_attentions)


# transformers' way to give lengths: the whole output, prompt included (for an encoder-decoder, the start token)
PROMPT_LENGTHS = ("max_length", "min_length")
# transformers' generation settings this package does not implement, each with the value that leaves the tokens as
# they are: a call or a checkpoint folder that sets another value is refused, not quietly generated without it.
NOT_IMPLEMENTED = {"repetition_penalty": 1.0, "encoder_repetition_penalty": 1.0, "encoder_no_repeat_ngram_size": 0,
                   "typical_p": 1.0, "epsilon_cutoff": 0.0, "eta_cutoff": 0.0, "min_p": None, "top_h": None,
                   "bad_words_ids": None, "suppress_tokens": None, "begin_suppress_tokens": None,
                   "sequence_bias": None, "forced_bos_token_id": None, "forced_eos_token_id": None,
                   "exponential_decay_length_penalty": None, "remove_invalid_values": False,
                   "renormalize_logits": False, "num_beam_groups": 1, "diversity_penalty": 0.0,
                   "penalty_alpha": None, "constraints": None, "force_words_ids": None, "guidance_scale": None,
                   "watermarking_config": None, "max_time": None, "stop_strings": None}
# Every setting generate() takes by name, and a checkpoint's generation defaults may hold (see
# checkpoint.read_generation_config): GenerationSettings' fields, the lengths above, the start ids, and the refused.
GENERATION_FIELDS = (*(f for f in GenerationSettings.__dataclass_fields__ if f != "generator"), *PROMPT_LENGTHS,
                     "decoder_start_token_id", "bos_token_id", "return_dict_in_generate", *NOT_IMPLEMENTED)


def first_set(*values):
    """The first of `values` that is not None (None if all are)."""
    return next((v for v in values if v is not None), None)


def make_settings(model, seed, kwargs, prompt_length):
    """Settings for one generate() call: (GenerationSettings, decoder start token or None, return_dict_in_generate).

    Each setting is the call's keyword argument, else the model's generation default (`model.generation_config`:
    what its checkpoint folder sets, read as transformers reads it), else, for token ids, model.config's, else
    GenerationSettings' own default (transformers'). The start token falls back on bos_token_id last, as in
    transformers. max_length / min_length count the prompt of `prompt_length` tokens (an encoder-decoder's start
    token: max_length=20 is 19 new tokens); max_new_tokens / min_new_tokens, set anywhere, win over them."""
    given = {k: v for k, v in kwargs.items() if v is not None}
    values = {**(model.generation_config or {}), **given}
    if unknown := set(values) - {"generator", *GENERATION_FIELDS}:
        raise TypeError(f"generate() got unknown settings {sorted(unknown)}; see GenerationSettings for the list.")
    if refused := {k: values[k] for k, inert in NOT_IMPLEMENTED.items() if values.get(k, inert) != inert}:
        raise ValueError(f"{refused}: bertgen_mini does not implement {', '.join(refused)}, and without it the tokens "
                         "would differ from transformers'. Leave it out of the call; if the model's folder set it, "
                         "drop it from model.generation_config to generate anyway.")
    return_dict = values.pop("return_dict_in_generate", False)
    start = first_set(values.pop("decoder_start_token_id", None), model.config.decoder_start_token_id,
                      values.pop("bos_token_id", None))
    max_length, min_length = values.pop("max_length", None), values.pop("min_length", None)
    if values.get("max_new_tokens") is None and max_length is not None:
        if max_length <= prompt_length:
            raise ValueError(f"max_length={max_length} counts the {prompt_length}-token prompt (the start token too) "
                             "and leaves no new token: raise it, or pass max_new_tokens.")
        values["max_new_tokens"] = max_length - prompt_length
    if values.get("min_new_tokens") is None and min_length is not None:
        values["min_new_tokens"] = max(0, min_length - prompt_length)
    s = GenerationSettings(**{k: v for k, v in values.items() if k not in NOT_IMPLEMENTED})
    s.eos_token_id = first_set(s.eos_token_id, model.config.eos_token_id)
    s.pad_token_id = first_set(s.pad_token_id, model.config.pad_token_id, s.eos_token_id, 0)
    if seed is not None:
        if s.generator is not None:
            raise ValueError("Pass either seed or generator, not both.")
        s.generator = torch.Generator(device=model.device).manual_seed(seed)
    s.check()
    return s, start, return_dict


def check_start(start, vocab_size: int):
    """The decoder start token, or a clear error when nothing names one or it is not an id of the vocabulary."""
    if start is None:
        raise ValueError("No decoder start token: pass decoder_start_token_id=... or set "
                         "model.config.decoder_start_token_id (for a BERT vocabulary: the [CLS] id, 101).")
    check_token_id("decoder_start_token_id", start, vocab_size)
    return start


def check_length(tokens, limit, what, fix):
    if tokens > limit:
        raise ValueError(f"{what} needs {tokens} positions but the model has {limit}. {fix}")


def warn_if_training(model):
    if model.training:
        warnings.warn("The model is in training mode, so dropout makes generation random and worse. Call "
                      "model.eval() first.", stacklevel=3)


@torch.inference_mode()
def generate_seq2seq(model, input_ids, attention_mask=None, seed=None, **settings):
    """Generate targets with an EncoderDecoderModel.

    input_ids (B, S) source ids, right-padded; attention_mask (B, S) 1 for real tokens. Settings: the fields of
    GenerationSettings, transformers' `max_length` / `min_length`, `return_dict_in_generate`, `seed` (sampling),
    `decoder_start_token_id`; what is not given comes from the model's generation defaults and config (see
    make_settings). Returns (B * num_return_sequences, L) ids starting with the start token, or a GenerateOutput.
    """
    s, start, return_dict = make_settings(model, seed, settings, prompt_length=1)
    vocab_size = model.decoder.config.vocab_size
    start = check_start(start, vocab_size)
    s.check_ids(vocab_size)
    check_ids_tensor(input_ids)
    if input_ids is None or input_ids.dim() != 2 or 0 in input_ids.shape:
        shape = None if input_ids is None else tuple(input_ids.shape)
        raise ValueError(f"input_ids has shape {shape}: pass a non-empty (batch, source_length) tensor; for one "
                         "sentence use ids[None].")
    device = model.device
    input_ids = input_ids.to(device)
    attention_mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask.to(device)
    if attention_mask.shape != input_ids.shape:
        raise ValueError(f"attention_mask {tuple(attention_mask.shape)} must match input_ids "
                         f"{tuple(input_ids.shape)}.")
    if not attention_mask.any(dim=1).all():
        raise ValueError("Some sources are empty (their attention_mask rows are all 0); drop them from the batch.")
    check_length(input_ids.shape[1], model.encoder.config.max_position_embeddings, "The source",
                 "Truncate it (truncation=True, max_length=...).")
    check_length(s.max_new_tokens, model.decoder.config.max_position_embeddings, f"max_new_tokens={s.max_new_tokens}",
                 "Ask for fewer new tokens.")
    warn_if_training(model)
    encoder_states = model.to_decoder_width(model.encoder(input_ids, attention_mask).last_hidden_state)  # read once
    prompt = torch.full((input_ids.shape[0], 1), start, dtype=torch.long, device=device)
    return run_search(model.decoder, prompt, encoder_states, attention_mask, s, return_dict)


@torch.inference_mode()
def generate_decoder(decoder, input_ids=None, attention_mask=None, encoder_hidden_states=None,
                     encoder_attention_mask=None, seed=None, **settings):
    """Generate with a BertGenerationDecoder used alone: continue the prompt input_ids (B, T), or start from the
    decoder start token when it is None. encoder_hidden_states (B, S, d) feed cross-attention when given.
    Settings as for generate_seq2seq. Returns (B * num_return_sequences, T + new) ids, prompt first."""
    check_ids_tensor(input_ids)  # first: a list or an array has no .dim() to read the prompt's length from
    prompt_length = 1 if input_ids is None or input_ids.dim() != 2 else input_ids.shape[1]
    s, start, return_dict = make_settings(decoder, seed, settings, prompt_length)
    device = decoder.device
    s.check_ids(decoder.config.vocab_size)
    if input_ids is None:
        start = check_start(start, decoder.config.vocab_size)
        batch = 1 if encoder_hidden_states is None else encoder_hidden_states.shape[0]
        input_ids = torch.full((batch, 1), start, dtype=torch.long, device=device)
    if input_ids.dim() != 2 or 0 in input_ids.shape:
        raise ValueError(f"input_ids has shape {tuple(input_ids.shape)}: pass a non-empty (batch, length) prompt.")
    if attention_mask is not None and not bool(attention_mask.all()):
        raise ValueError("Padded prompts are not supported by a lone decoder: generate prompts of one length "
                         "together (or one at a time).")
    check_length(input_ids.shape[1] + s.max_new_tokens - 1, decoder.config.max_position_embeddings,
                 f"The prompt plus max_new_tokens={s.max_new_tokens}", "Shorten the prompt or ask for fewer tokens.")
    warn_if_training(decoder)
    if encoder_hidden_states is not None and encoder_attention_mask is None:
        encoder_attention_mask = torch.ones(encoder_hidden_states.shape[:2], dtype=torch.long, device=device)
    return run_search(decoder, input_ids.to(device), encoder_hidden_states, encoder_attention_mask, s, return_dict)
