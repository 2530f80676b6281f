"""Scoring a sentence-splitting (or fusing) model: generate for a WikiSplit split, then exact match, SARI and BLEU.

    python -m bertgen_mini.evaluate --model-dir runs/bert2bert --split validation --rows 100

writes predictions.jsonl (source, prediction, reference a line) and metrics.json next to the model (or into
--output-dir). Scores are computed on text that went through the tokenizer the model writes with and back (for the
uncased MiniLM: lower-cased, spaces kept around punctuation as WikiSplit has them; GPT-2's byte-level BPE gives any
text back unchanged) for predictions, references and sources alike, so a model is not punished for what its
vocabulary cannot write. Where the halves read different vocabularies (bert2gpt: WordPiece in, GPT-2's BPE out) the
source tokenizer reads the sources and the target tokenizer writes, decodes and round-trips the text scored: the
sources too, since copying a source is what the model would write to leave it unchanged.
References: metrics.py (SARI as published WikiSplit results score it, and on sari_hook's defaults; sacrebleu
BLEU); Rothe, Narayan & Severyn (TACL 2020) for the WikiSplit evaluation.
"""
import argparse
import json
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .checks import check_lengths_fit
from .data import load_wikisplit
from .devices import pick_device, ready_for_inference
from .files import atomic_write_text, check_writable, checkpoint_dir
from .metrics import score_all

# Scoring reads whole sources and leaves room for whole splits, whatever lengths training used: a model trained on
# short pairs must be judged on the same full validation sentences as the copy baseline. 128 WordPiece tokens hold
# every WikiSplit validation source (longest 98) and target (longest 109); smaller models get what their positions hold.
EVAL_MAX_LEN = 128


def round_trip(texts, tokenizer) -> list[str]:
    """Each text as the tokenizer can write it: encoded without specials, decoded, whitespace normalised ([UNK]
    stays, so a reference keeps the place of a word the vocabulary cannot spell)."""
    return [" ".join(tokenizer.decode(tokenizer.encode(t, add_special_tokens=False),
                                      clean_up_tokenization_spaces=False).split()) for t in texts]


def decode(ids, tokenizer) -> list[str]:
    """Generated ids (B, T) as text to score: specials dropped, whitespace normalised, and no clean-up, since
    WikiSplit text keeps spaces around punctuation and SARI counts whitespace tokens."""
    texts = tokenizer.batch_decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
    return [" ".join(t.split()) for t in texts]


@torch.no_grad()
def predict(model, tokenizer, sources, batch_size: int = 32, max_source_len: int | None = None,
            max_new_tokens: int | None = None, num_beams: int = 1, progress: bool = False,
            target_tokenizer=None) -> list[str]:
    """Generated text for each source string (greedy, or beam search with num_beams > 1), in input order: the
    sources read by `tokenizer`, the output decoded by `target_tokenizer` (default `tokenizer`).
    Lengths left as None read up to EVAL_MAX_LEN tokens of each source and write up to EVAL_MAX_LEN new ones,
    fewer where the model has fewer positions; lengths given are checked against those positions before anything
    is generated. progress: a tqdm bar over the batches."""
    for name, value in (("batch_size", batch_size), ("max_source_len", max_source_len),
                        ("max_new_tokens", max_new_tokens), ("num_beams", num_beams)):
        if value is not None and value < 1:
            raise ValueError(f"{name}={value}: must be at least 1.")
    check_lengths_fit(model, max_source_len, max_new_tokens, "--max-new-tokens")  # now, not at the first long source
    if max_source_len is None:
        max_source_len = min(EVAL_MAX_LEN, model.encoder.config.max_position_embeddings)
    if max_new_tokens is None:
        max_new_tokens = min(EVAL_MAX_LEN, model.decoder.config.max_position_embeddings)
    was_training = model.training
    model.eval()
    writer = tokenizer if target_tokenizer is None else target_tokenizer
    predictions = []
    for start in tqdm(range(0, len(sources), batch_size), disable=not progress, unit="batch", desc="generating"):
        enc = tokenizer(list(sources[start:start + batch_size]), padding=True, truncation=True,
                        max_length=max_source_len, return_tensors="pt").to(model.device)
        out = model.generate(enc["input_ids"], enc["attention_mask"], max_new_tokens=max_new_tokens,
                             num_beams=num_beams)  # (B, 1 + new), the start token first
        predictions += decode(out, writer)
    model.train(was_training)
    return predictions


def evaluate(model, tokenizer, pairs, batch_size: int = 32, max_source_len: int | None = None,
             max_new_tokens: int | None = None, num_beams: int = 1, progress: bool = False,
             target_tokenizer=None) -> tuple[dict, list[dict]]:
    """Scores of `model` on `pairs` (Pair(source, target) from data.load_wikisplit) and the rows behind them.
    Returns (scores, [{"source", "prediction", "reference"}, ...]): scores holds metrics.score_all's "exact",
    "sari", "sari_t2t" and "bleu", and the same but "exact" for the source itself as the prediction ("sari_copy",
    ...): the bar a splitting model must clear (copying scores 30 on the published SARI but 63 on sari_t2t, which
    counts deleting nothing as perfect deletion). progress: a tqdm bar over the generated batches.
    `tokenizer` reads the sources into the model; `target_tokenizer` (default `tokenizer`) decodes its output and
    round-trips the text it is scored on, sources and references alike (see the module docstring)."""
    writer = tokenizer if target_tokenizer is None else target_tokenizer
    sources = round_trip([p.source for p in pairs], writer)
    references = round_trip([p.target for p in pairs], writer)
    predictions = predict(model, tokenizer, [p.source for p in pairs], batch_size, max_source_len, max_new_tokens,
                          num_beams, progress, target_tokenizer)
    scores = score_all(sources, predictions, references)
    copy = score_all(sources, sources, references)
    scores.update({f"{name}_copy": value for name, value in copy.items() if name != "exact"})
    rows = [{"source": s, "prediction": p, "reference": r} for s, p, r in zip(sources, predictions, references)]
    return scores, rows


def at_least(minimum: int):
    """An argparse type: an int no smaller than `minimum`."""
    def parse(text):
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is too small: give {minimum} or more")
        return value
    return parse


def main(argv=None):
    from .encoder_decoder import EncoderDecoderModel
    from .recipes import load_tokenizers

    parser = argparse.ArgumentParser(description="Score a saved model on a WikiSplit split.")
    parser.add_argument("--model-dir", required=True, help="folder written by bertgen_mini.train (the model and its "
                                                           "tokenizers: see recipes.save_tokenizers)")
    parser.add_argument("--split", default="validation", help="tune, validation or test")
    parser.add_argument("--task", default="split", choices=("split", "fuse"),
                        help="split: one sentence into two (WikiSplit); fuse: the reverse (default: split)")
    parser.add_argument("--data-dir", default=None, help="folder holding <split>.tsv (default: the usual search)")
    parser.add_argument("--rows", type=at_least(0), default=100, help="score the first N pairs (0 = all)")
    parser.add_argument("--batch-size", type=at_least(1), default=32, help="sources generated together (default: 32)")
    parser.add_argument("--num-beams", type=at_least(1), default=1,
                        help="1: greedy search; more: beam search with that many beams (default: 1)")
    parser.add_argument("--max-source-len", type=at_least(3), default=None,
                        help=f"source tokens read, the rest cut (default: {EVAL_MAX_LEN})")
    parser.add_argument("--max-new-tokens", type=at_least(1), default=None,
                        help=f"most tokens written for one source (default: {EVAL_MAX_LEN})")
    parser.add_argument("--output-dir", default=None, help="where predictions.jsonl and metrics.json go "
                                                           "(default: the model folder)")
    args = parser.parse_args(argv)
    torch.set_num_threads(min(2, torch.get_num_threads())) if not torch.cuda.is_available() else None
    # check_writable creates its folder: the model's is checked to exist first, so a mistyped one is not created
    out = Path(args.output_dir) if args.output_dir else checkpoint_dir(args.model_dir)
    check_writable(out)  # before the generation, which can take an hour
    model_dir = checkpoint_dir(args.model_dir)
    model = ready_for_inference(EncoderDecoderModel.from_pretrained(model_dir), device=pick_device())
    tokenizer, target_tokenizer = load_tokenizers(model_dir, model)
    pairs = load_wikisplit(args.split, args.data_dir, args.task)
    pairs = pairs[:args.rows] if args.rows else pairs
    scores, rows = evaluate(model, tokenizer, pairs, args.batch_size, args.max_source_len, args.max_new_tokens,
                            args.num_beams, progress=True, target_tokenizer=target_tokenizer)
    print(json.dumps(scores), flush=True)  # before the files: a write that fails loses nothing computed
    atomic_write_text(out / "predictions.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    atomic_write_text(out / "metrics.json", json.dumps({**scores, "split": args.split, "rows": len(pairs),
                                                         "num_beams": args.num_beams}, indent=2) + "\n")
    return scores


if __name__ == "__main__":
    main()
