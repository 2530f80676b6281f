"""Generation: turn a source batch into target token ids, greedily, by sampling, or by beam search.

    y_t = argmax_v  log p(v | y_<t, x)          (greedy; sampling draws y_t from p instead)

The encoder reads the source once. The decoder then runs one position a step: a key/value cache keeps every
layer's self-attention keys and values (one position longer each step) and its cross-attention keys and values
(computed from the encoder output at the first step, then reused), so each step costs one token's worth of work.
Outputs start with the decoder start token and, once a row has produced the end token, are padded.

References: Sutskever et al. 2014 and Wu et al. 2016 (beam search, length penalty); transformers'
`GenerationMixin.generate` (`_sample`, `_beam_search`), whose token choices this module reproduces exactly.
"""
import warnings
from dataclasses import dataclass

import torch

from .kv_cache import KVCache
from .beam_search import beam_search
from .logits_processors import process_scores
from .outputs import ModelOutput


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
        """Raise a ValueError that says what to change for settings that cannot work together."""
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens={self.max_new_tokens}: ask for at least one new token.")
        if self.num_beams < 1:
            raise ValueError(f"num_beams={self.num_beams}: use 1 for greedy search or sampling, more for beams.")
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


def make_settings(config, seed, kwargs, device):
    """GenerationSettings from keyword arguments, with token ids taken from `config` when not given.
    Returns (settings, return_dict)."""
    return_dict = kwargs.pop("return_dict_in_generate", False)
    if unknown := set(kwargs) - set(GenerationSettings.__dataclass_fields__):
        raise TypeError(f"generate() got unknown settings {sorted(unknown)}; see GenerationSettings for the list.")
    s = GenerationSettings(**kwargs)
    s.eos_token_id = s.eos_token_id if s.eos_token_id is not None else config.eos_token_id
    s.pad_token_id = s.pad_token_id if s.pad_token_id is not None else config.pad_token_id
    if s.pad_token_id is None:
        s.pad_token_id = s.eos_token_id if s.eos_token_id is not None else 0
    if seed is not None:
        if s.generator is not None:
            raise ValueError("Pass either seed or generator, not both.")
        s.generator = torch.Generator(device=device).manual_seed(seed)
    s.check()
    return s, return_dict


def start_token(given, config):
    """The decoder start token: the argument, else the config's, else a clear error."""
    start = given if given is not None else config.decoder_start_token_id
    if start is None:
        raise ValueError("No decoder start token: pass decoder_start_token_id=... or set "
                         "model.config.decoder_start_token_id (for a BERT vocabulary: the [CLS] id, 101).")
    return start


def check_length(tokens, limit, what, fix):
    if tokens > limit:
        raise ValueError(f"{what} needs {tokens} positions but the model has {limit}. {fix}")


def warn_if_training(model):
    if model.training:
        warnings.warn("The model is in training mode, so dropout makes generation random and worse. Call "
                      "model.eval() first.", stacklevel=3)


@torch.inference_mode()
def generate_seq2seq(model, input_ids, attention_mask=None, decoder_start_token_id=None, seed=None, **settings):
    """Generate targets with an EncoderDecoderModel.

    input_ids (B, S) source ids, right-padded; attention_mask (B, S) 1 for real tokens. Settings: the fields of
    GenerationSettings, `return_dict_in_generate`, `seed` (sampling), `decoder_start_token_id`; token ids default to
    model.config's. Returns (B * num_return_sequences, L) ids starting with the start token, or a GenerateOutput.
    """
    s, return_dict = make_settings(model.config, seed, settings, model.device)
    start = start_token(decoder_start_token_id, model.config)
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
                     encoder_attention_mask=None, decoder_start_token_id=None, seed=None, **settings):
    """Generate with a BertGenerationDecoder used alone: continue the prompt input_ids (B, T), or start from the
    decoder start token when it is None. encoder_hidden_states (B, S, d) feed cross-attention when given.
    Settings as for generate_seq2seq. Returns (B * num_return_sequences, T + new) ids, prompt first."""
    s, return_dict = make_settings(decoder.config, seed, settings, decoder.device)
    device = decoder.device
    if input_ids is None:
        start = start_token(decoder_start_token_id, decoder.config)
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
