"""Validation at the door: settings and model inputs that would otherwise give a wrong number without a word.

A wrong value caught here gets an error that names it and says what to pass instead; caught later it would be an
unrelated TypeError deep inside, or worse, a result: a (1, S) attention mask broadcast over every row, a label of -1
trained as token 0, an empty batch with a finite loss. Each check is a few comparisons on shapes or one reduction
over the ids, small next to the forward pass it guards.
"""
import dataclasses
import os
import typing
import warnings

import torch


def fits(value, kind) -> bool:
    """Whether `value` is of the annotated `kind`: ints pass for floats, bools never pass for numbers."""
    if kind is type(None):
        return value is None
    if kind in (int, float) and isinstance(value, bool):
        return False
    if kind is float:
        return isinstance(value, (int, float))
    return isinstance(value, kind)


def check_type(name: str, value, annotation) -> None:
    """Raise a TypeError naming `name` when `value` fits none of the types in `annotation` (int, str | None, ...)."""
    kinds = typing.get_args(annotation) or (annotation,)
    if not any(fits(value, kind) for kind in kinds):
        wanted = " or ".join("None" if k is type(None) else k.__name__ for k in kinds)
        raise TypeError(f"{name}={value!r} is a {type(value).__name__}: give it as {wanted}.")


def check_field_types(settings) -> None:
    """Raise a TypeError naming the first field of the dataclass `settings` whose value has the wrong type."""
    for field in dataclasses.fields(settings):
        check_type(f"{type(settings).__name__}.{field.name}", getattr(settings, field.name), field.type)


# The sizes of BERT-large (Devlin et al. 2019), the largest checkpoint BertGeneration was published with: a config that
# cannot fit in memory is named by the size furthest above these, the likeliest typo.
LARGE_SIZES = {"vocab_size": 50358, "hidden_size": 1024, "num_hidden_layers": 24, "intermediate_size": 4096,
               "max_position_embeddings": 512}


def memory_bytes() -> int:
    """This machine's physical memory (2**40 where the platform does not say: Windows)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return 2**40


def parameter_count(config) -> int:
    """Parameters of one encoder or decoder built from `config`: embeddings (V + P) x d, then per layer the attention
    maps 4 (d^2 + d) (twice with cross-attention), the feed-forward 2 d i + i + d, and the LayerNorms."""
    d, i = config.hidden_size, config.intermediate_size
    attention = 4 * (d * d + d) + 2 * d
    layer = attention * (2 if config.add_cross_attention else 1) + 2 * d * i + i + d + 2 * d
    return (config.vocab_size + config.max_position_embeddings + 2) * d + config.num_hidden_layers * layer


def check_size(config) -> None:
    """Refuse a config whose fp32 weights alone would not fit in this machine's memory, naming the size that is
    furthest above BERT-large's: building it would allocate until the machine gives out."""
    needed, memory = 4 * parameter_count(config), memory_bytes()
    if needed > memory:
        name = max(LARGE_SIZES, key=lambda field: getattr(config, field) / LARGE_SIZES[field])
        sizes = ", ".join(f"{field}={getattr(config, field)}" for field in LARGE_SIZES)
        raise ValueError(f"{name}={getattr(config, name)} makes a model of {needed / 4:.3g} parameters "
                         f"({needed / 2**30:,.0f} GiB in fp32), more than this machine's {memory / 2**30:.0f} GiB of "
                         f"memory. Is {name} right? Check the config (config.json): {sizes}.")


def check_config(config) -> None:
    """Every field of a BertGenerationConfig or GPT2Config (whose properties give GPT-2's sizes BERT's names): its
    type, then a value the model can be built with."""
    check_field_types(config)
    for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                 "max_position_embeddings"):
        if getattr(config, name) < 1:
            raise ValueError(f"{name}={getattr(config, name)}: a model needs at least 1; check the config.")
    for name in config.dropout_fields():
        if not 0 <= getattr(config, name) < 1:
            raise ValueError(f"{name}={getattr(config, name)}: a dropout probability lies in [0, 1) (0 = off).")
    if not config.layer_norm_eps > 0 or not config.initializer_range >= 0:
        raise ValueError(f"layer_norm_eps={config.layer_norm_eps} must be > 0 and initializer_range="
                         f"{config.initializer_range} >= 0.")
    for name in ("pad_token_id", "bos_token_id", "eos_token_id", "decoder_start_token_id"):
        if getattr(config, name) is not None and getattr(config, name) < 0:
            raise ValueError(f"{name}={getattr(config, name)}: token ids are >= 0 (or None for none).")
    if config.pad_token_id is not None and config.pad_token_id >= config.vocab_size:
        raise ValueError(f"pad_token_id={config.pad_token_id} is outside the vocabulary (vocab_size="
                         f"{config.vocab_size}): set vocab_size to the tokenizer's len(tokenizer).")
    check_size(config)
    if config.hidden_size % config.num_attention_heads:
        raise ValueError(
            f"hidden_size ({config.hidden_size}) must be a multiple of num_attention_heads "
            f"({config.num_attention_heads}): each head gets hidden_size / heads dimensions."
        )
    if config.add_cross_attention and not config.is_decoder:
        raise ValueError("add_cross_attention=True needs is_decoder=True: only a decoder attends to an encoder.")


def check_encoder_decoder(encoder_config, decoder_config) -> None:
    """Two halves that fit together: a decoder that reads an encoder (of any width: the pair projects the encoder's
    states to the decoder's width when they differ)."""
    if not (decoder_config.is_decoder and decoder_config.add_cross_attention):
        raise ValueError("The decoder needs is_decoder=True and add_cross_attention=True, e.g. "
                         "BertGenerationDecoder.from_pretrained(path, is_decoder=True, add_cross_attention=True).")


def check_shareable(encoder_config, decoder_config) -> None:
    """A shared pair (BERTSHARE) is one set of weights, so both halves need the same architecture, vocabulary,
    width and depth."""
    if type(encoder_config) is not type(decoder_config):
        raise ValueError(f"A {decoder_config.model_type} decoder cannot share weights with a "
                         f"{encoder_config.model_type} encoder: sharing needs one architecture for both halves "
                         "(bertshare, robertashare).")
    if (encoder_config.vocab_size, encoder_config.hidden_size, encoder_config.num_hidden_layers) != (
            decoder_config.vocab_size, decoder_config.hidden_size, decoder_config.num_hidden_layers):
        raise ValueError("A shared encoder-decoder needs the same vocabulary, width and depth on both sides.")


def check_inputs(config, input_ids, inputs_embeds, attention_mask, encoder_states=None, encoder_mask=None,
                 cache=None):
    """The inputs of one forward pass: exactly one of input_ids (B, T) and inputs_embeds (B, T, d), non-empty; ids
    inside the vocabulary; past + T positions at most max_position_embeddings; an attention mask of shape (B, T)
    ((B, past + T) with a cache); and an encoder mask (B, S) that matches the encoder states (B, S, d)."""
    if (input_ids is None) == (inputs_embeds is None):
        raise ValueError("Pass exactly one of input_ids or inputs_embeds.")
    check_ids_tensor(input_ids)
    tokens = input_ids if input_ids is not None else inputs_embeds
    name = "input_ids" if input_ids is not None else "inputs_embeds"
    if tokens.dim() != (2 if input_ids is not None else 3) or 0 in tokens.shape:
        raise ValueError(f"{name} has shape {tuple(tokens.shape)}: pass a non-empty batch, (batch, length) ids or "
                         "(batch, length, hidden) embeddings; for one sequence use ids[None].")
    # Reading the ids' values is a sync point a compiled graph cannot hold: compiled runs skip this check.
    if input_ids is not None and not torch.compiler.is_compiling() and (
            input_ids.min() < 0 or input_ids.max() >= config.vocab_size):
        raise ValueError(f"input_ids hold ids outside 0..{config.vocab_size - 1} (min {int(input_ids.min())}, max "
                         f"{int(input_ids.max())}). Was the text tokenized with this model's own vocabulary? (-100 "
                         "belongs in labels only.)")
    B, T = tokens.shape[:2]
    past = cache.get_seq_length() if cache is not None else 0
    if past + T > config.max_position_embeddings:
        raise ValueError(f"The sequence needs {past + T} positions but the model has "
                         f"{config.max_position_embeddings}. Truncate the input (truncation=True, max_length=...).")
    if attention_mask is not None and (attention_mask.shape[0] != B or attention_mask.shape[1:] not in
                                       ((T,), (past + T,))):
        raise ValueError(f"attention_mask has shape {tuple(attention_mask.shape)} but {name} {(B, T)}"
                         f"{f' after {past} cached positions' if past else ''}: pass one mask row per sequence and "
                         "one entry per token (the tokenizer's attention_mask, from the same call as the ids).")
    if encoder_states is not None and not config.add_cross_attention:
        raise ValueError("encoder_hidden_states were given, but this model has no cross-attention: build it with "
                         "add_cross_attention=True (a BertGeneration decoder: is_decoder=True as well).")
    if encoder_mask is not None and encoder_states is not None and encoder_mask.shape != encoder_states.shape[:2]:
        raise ValueError(f"The encoder attention_mask has shape {tuple(encoder_mask.shape)} but the encoder states "
                         f"{tuple(encoder_states.shape[:2])}: pass the source's own (batch, source_length) mask.")
    check_mask_values(attention_mask, "attention_mask")
    check_mask_values(encoder_mask, "encoder attention_mask")


def check_ids_tensor(input_ids, name: str = "input_ids") -> None:
    """input_ids, when given, must be an integer tensor: a list or floats would fail deep inside the embedding."""
    if input_ids is not None and (not isinstance(input_ids, torch.Tensor) or input_ids.is_floating_point()
                                  or input_ids.is_complex() or input_ids.dtype == torch.bool):
        what = f"a {input_ids.dtype} tensor" if isinstance(input_ids, torch.Tensor) else f"a {type(input_ids).__name__}"
        raise TypeError(f"{name} is {what}: pass a LongTensor of token ids, e.g. the tokenizer's "
                        "return_tensors='pt' output or torch.tensor(ids) (ids.long() for whole-number floats).")


def check_mask_values(mask, name: str) -> None:
    """A mask holds 1 (attend) and 0 (padding) only: any other value is scaled into the attention scores and changes
    the output without a word. (Read from the values, so compiled runs skip it, as they skip the id range.)"""
    if mask is not None and not torch.compiler.is_compiling() and ((mask != 0) & (mask != 1)).any():
        bad = mask[(mask != 0) & (mask != 1)][0].item()
        raise ValueError(f"{name} holds values other than 0 and 1 (e.g. {bad}): 1 marks a token to attend to, 0 "
                         "padding. Pass the tokenizer's attention_mask, or (mask > 0).long().")


def check_labels(labels, vocab_size: int, like=None) -> None:
    """labels (B, T): every entry a token id in [0, vocab_size) or -100 (no loss there); the shape of `like`
    (the decoder inputs) when given."""
    if labels is None:
        return
    if labels.dim() != 2 or 0 in labels.shape:
        raise ValueError(f"labels have shape {tuple(labels.shape)}: pass a non-empty (batch, target_length) tensor.")
    if like is not None and tuple(labels.shape) != tuple(like.shape[:2]):
        raise ValueError(f"labels have shape {tuple(labels.shape)} but the decoder inputs {tuple(like.shape[:2])}: "
                         "give one label per decoder position.")
    bad = (labels != -100) & ((labels < 0) | (labels >= vocab_size))
    if not torch.compiler.is_compiling() and bad.any():  # a branch on values would split a compiled graph
        row, col = (int(i) for i in bad.nonzero()[0])
        raise ValueError(f"labels[{row}, {col}] = {int(labels[row, col])} is not a token id: labels must be ids in "
                         f"0..{vocab_size - 1}, or -100 where no loss is wanted (padding).")


def check_tokenizer_fits(tokenizer, model, target_tokenizer=None) -> None:
    """A tokenizer paired with a model (an encoder-decoder pair or one half) has one token per row of each half's
    vocabulary: with fewer, the model can write ids the tokenizer cannot read (a <::::> not added, an older
    vocab.txt); with more, the text holds ids the model has no row for. target_tokenizer: the decoder's, where the
    halves read different vocabularies (bert2gpt); default `tokenizer`."""
    if hasattr(model, "encoder") and hasattr(model, "decoder"):
        target = tokenizer if target_tokenizer is None else target_tokenizer  # not `or`: a tokenizer has a len()
        halves = [("encoder", model.encoder, tokenizer), ("decoder", model.decoder, target)]
    else:
        halves = [("model", model, tokenizer)]
    for which, half, tok in halves:
        if len(tok) != half.config.vocab_size:
            name, part = "tokenizer", ""
            if target_tokenizer is not None and which != "model":  # two tokenizers: say which, and whose half
                name, part = ("source " if which == "encoder" else "target ") + name, which + " "
            raise ValueError(f"The {name} has {len(tok)} tokens but the model's {part}vocabulary has "
                             f"{half.config.vocab_size}: they do not belong together. Load the tokenizer saved with "
                             "this model (its folder's vocab.txt and tokenizer_config.json, with the added tokens), or "
                             "resize the model to len(tokenizer) (bertgen_mini.vocab.resize_token_embeddings).")


def warn_if_copying(decoder_input_ids, labels) -> None:
    """decoder_input_ids (B, T) equal to the labels (B, T) are not shifted: the model would learn to copy."""
    if labels is not None and decoder_input_ids is not None and torch.equal(decoder_input_ids, labels):
        warnings.warn("decoder_input_ids equal labels, so position t is trained to output the token it was "
                      "just given: the model learns to copy, not to predict. Pass only labels and let the "
                      "model shift them right.", stacklevel=3)


def check_loss(loss) -> None:
    """An evaluation loss (no gradients) that is NaN or infinite is an error, not a number to report; in training
    the Trainer checks it and names the step."""
    if loss is not None and not torch.is_grad_enabled() and not bool(torch.isfinite(loss)):
        raise FloatingPointError(f"The loss is {float(loss)}: the model's weights or inputs hold NaN or infinite "
                                 "values (find them with torch.isfinite(p).all() per parameter), or no label is "
                                 "scored (every label is -100).")


def check_lengths_fit(model, source_len, target_len, target_flag: str = "--max-target-len", recipe=None) -> None:
    """Refuse a source or target length (None: not given, not checked) longer than the position table of the half
    that reads it (a GPT-2 stand-in may have 128 positions), naming its flag (`target_flag`: the target's, e.g.
    evaluate's --max-new-tokens) and the `recipe` whose checkpoint it is: caught before anything runs, not in the
    first long batch."""
    for flag, length, half in (("--max-source-len", source_len, "encoder"), (target_flag, target_len, "decoder")):
        positions = getattr(model, half).config.max_position_embeddings
        if length is not None and length > positions:
            whose = f" (the {recipe} checkpoint's)" if recipe else ""
            raise ValueError(f"{flag} {length} is more than the {half}'s {positions} positions{whose}: "
                             f"pass at most {positions}.")
