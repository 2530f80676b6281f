"""Checks for notebook 09 (other checkpoints: byte-level BPE, RoBERTa, GPT-2)."""
import json
import tempfile
from pathlib import Path

import torch

from . import check, check_prediction, check_written, require

# A small BPE for 09.1: every byte's stand-in, then these merges in rank order ("Ġ" stands for a space)
MERGES = [("l", "o"), ("lo", "w"), ("e", "r"), ("Ġ", "low"), ("a", "a"), ("aa", "a"), ("n", "e"), ("w", "er"),
          ("ne", "wer")]
WORDS = [" lower", "aaaaa", "newer", "ner", " low"]  # ties (aaaaa), rank before position (ner), a merge chain (newer)
ENCODER_WIDTH, DECODER_WIDTH = 384, 64  # MiniLM's hidden size, and the GPT-2 stand-in's n_embd in notebook 09


def merges_tokenizer():
    """A GPT2Tokenizer over MERGES, written to a temporary folder and read back."""
    from ..tokenizer_bpe import BYTE_TO_CHAR, GPT2Tokenizer

    tokens = list(BYTE_TO_CHAR.values()) + [left + right for left, right in MERGES] + ["<|endoftext|>"]
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}), encoding="utf-8")
        (Path(folder) / "merges.txt").write_text("\n".join(f"{a} {b}" for a, b in MERGES) + "\n", encoding="utf-8")
        return GPT2Tokenizer.from_pretrained(folder)


def check_apply_merges(apply_merges) -> bool:
    """09.1: apply_merges(word, merge_ranks), byte-pair merges on one word, against GPT2Tokenizer's tokens."""
    def test():
        tokenizer = merges_tokenizer()
        for text in WORDS:
            word = "".join(tokenizer.convert_ids_to_tokens(tokenizer.encode(text)))  # its stand-ins: "Ġlower"
            expected = tokenizer.tokenize(text)
            got = apply_merges(word, dict(tokenizer.merge_ranks))
            require(isinstance(got, list) and all(isinstance(piece, str) for piece in got),
                    f"return a list of strings (the pieces), not {type(got).__name__}")
            if "".join(got) != word:
                hint = "The pieces must spell the word, in order: a merge joins two neighbours into one."
            elif got == list(word):
                hint = "Nothing was merged: look up each adjacent pair (left, right) in merge_ranks."
            elif any(pair in tokenizer.merge_ranks for pair in zip(got, got[1:])):
                hint = "You stopped while a listed pair was left: repeat until no adjacent pair is in merge_ranks."
            else:
                hint = ("Merge the adjacent pair with the lowest rank first, wherever it is (of two equal pairs the "
                        "leftmost), then look at the new pairs again.")
            require(got == expected, f"for {word!r} you gave {got}, GPT2Tokenizer gives {expected}. {hint}")
        return f"{WORDS[0]!r} -> {tokenizer.tokenize(WORDS[0])}"
    return check("09.1", test, apply_merges)


def check_fold_positions(fold_positions) -> bool:
    """09.2: fold_positions(position_embeddings, token_type_embeddings, pad_token_id), RoBERTa's tables as
    BertGeneration's position table, against roberta.from_roberta."""
    from ..roberta import from_roberta

    def test():
        generator = torch.Generator().manual_seed(0)
        table, types = torch.randn(8, 4, generator=generator), torch.randn(2, 4, generator=generator)
        expected = from_roberta({"embeddings.position_embeddings.weight": table,
                                 "embeddings.token_type_embeddings.weight": types}, 1)[0]
        expected = expected["embeddings.position_embeddings.weight"]
        got = fold_positions(table.clone(), types.clone(), 1)
        require(torch.is_tensor(got), f"return a tensor, not {type(got).__name__}")
        if got.shape == (7, 4):
            hint = "Positions start at padding_idx + 1, not at padding_idx: drop padding_idx + 1 rows."
        elif got.shape == table.shape:
            hint = "Drop the first padding_idx + 1 rows: no real token reads them."
        elif got.shape == expected.shape and torch.allclose(got, table[2:]):
            hint = "Add the type vector too: RoBERTa adds token_type_embeddings[0] to every token."
        elif got.shape == expected.shape and torch.allclose(got, table[:-2] + types[0]):
            hint = "Drop the first rows, not the last ones: row i + padding_idx + 1 becomes row i."
        else:
            hint = "Row i of the result is position_embeddings[i + padding_idx + 1] + token_type_embeddings[0]."
        require(got.shape == expected.shape and torch.allclose(got, expected, atol=1e-6),
                f"for a table of {len(table)} rows with padding_idx 1 you gave shape {tuple(got.shape)}, "
                f"expected {tuple(expected.shape)} and other values. {hint}")
        return f"a table of {len(table)} rows became {len(got)} positions"
    return check("09.2", test, fold_positions)


def projection_parameters(encoder_width: int = ENCODER_WIDTH, decoder_width: int = DECODER_WIDTH) -> int:
    """Parameters of the enc_to_dec_proj an EncoderDecoderModel puts between a BertGeneration encoder and a GPT-2
    decoder of these widths (two one-layer halves built here)."""
    from ..config import BertGenerationConfig
    from ..encoder_decoder import EncoderDecoderModel
    from ..gpt2 import GPT2Config, GPT2LMHeadModel
    from ..model import BertGenerationEncoder

    encoder = BertGenerationEncoder(BertGenerationConfig(vocab_size=10, hidden_size=encoder_width,
                                                         num_hidden_layers=1, num_attention_heads=4,
                                                         intermediate_size=8, max_position_embeddings=8))
    decoder = GPT2LMHeadModel(GPT2Config(vocab_size=10, n_positions=8, n_embd=decoder_width, n_layer=1, n_head=4,
                                         add_cross_attention=True))
    pair = EncoderDecoderModel(encoder=encoder, decoder=decoder)
    return sum(p.numel() for p in pair.enc_to_dec_proj.parameters())


NOT_ONTO_ITSELF = "It maps the encoder's width to the decoder's, not onto itself."
PROJECTION_HINTS = {  # what a wrong count of enc_to_dec_proj's parameters most likely forgot
    ENCODER_WIDTH * DECODER_WIDTH: "That is the weight alone: nn.Linear has a bias too, one per output.",
    ENCODER_WIDTH * DECODER_WIDTH + ENCODER_WIDTH: "The bias has one entry per output: the decoder's width.",
    ENCODER_WIDTH * ENCODER_WIDTH + ENCODER_WIDTH: NOT_ONTO_ITSELF,
    DECODER_WIDTH * DECODER_WIDTH + DECODER_WIDTH: NOT_ONTO_ITSELF,
}


def check_projection_prediction(prediction) -> bool:
    """09.3 (predict): parameters of enc_to_dec_proj between MiniLM (384 wide) and the GPT-2 stand-in (64 wide)."""
    return check_prediction("09.3", prediction, projection_parameters,
                            f"enc_to_dec_proj is nn.Linear({ENCODER_WIDTH}, {DECODER_WIDTH}): a weight of "
                            f"{DECODER_WIDTH} x {ENCODER_WIDTH} and a bias of {DECODER_WIDTH}.", hint=PROJECTION_HINTS)


def check_other_checkpoints_answer(answer) -> bool:
    """09.4 (written): why bert2gpt can lose to roberta2roberta."""
    return check_written("09.4", answer, [
        "bert2gpt reads one vocabulary and writes another: the decoder's embeddings know nothing of the encoder's, "
        "so even copying a word (most of WikiSplit) must be learned through new cross-attention and, when the "
        "widths differ, a new enc_to_dec_proj; roberta2roberta reads and writes one vocabulary, and robertashare "
        "even one embedding table.",
        "GPT-2 was pretrained as a language model without a source: it writes fluent text, but conditioning on the "
        "input is exactly what its new cross-attention has to learn, while a RoBERTa decoder brings a bidirectional "
        "encoder's understanding of the same words the encoder reads.",
        "The paper found GPT-2 decoders weaker than BERT or RoBERTa ones on its tasks; RoBERTa was also pretrained "
        "on more data, and its cased byte-level BPE writes any text back exactly, which uncased WordPiece cannot."])


EXERCISES = {"09.1": (check_apply_merges, "apply_merges", "function"),
             "09.2": (check_fold_positions, "fold_positions", "function"),
             "09.3": (check_projection_prediction, "predicted_projection", "value"),
             "09.4": (check_other_checkpoints_answer, "other_checkpoints_answer", "written")}
