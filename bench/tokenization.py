"""Tokenizer benchmark: bertgen_mini against transformers on every sentence of WikiSplit tune + validation.

Both columns of both files (20,000 texts). WordPiece: our pure-Python BertTokenizer with an empty word cache
(first pass) and a full one (second pass), against transformers' BertTokenizer (Rust `tokenizers` behind a Python
call) and the bare Rust `encode_batch`. Sentencepiece: a 2,000-piece model trained on tune.tsv, our
BertGenerationTokenizer against transformers' (both call the same C++ sentencepiece). Byte-level BPE: a 16,000-token
BPE trained on tune.tsv by the `tokenizers` package, our pure-Python GPT2Tokenizer and RobertaTokenizer against
transformers' (Rust), ours and theirs run in turn so that a busy machine slows both alike. Also decoding.

    python bench/tokenization.py        # ROUNDS=2: each time is the best of 2

Prints one line per measurement and the ratios (ours / theirs: above 1 means we are slower).
"""
import os
import sys
import tempfile
import time

import transformers
from tokenizers import ByteLevelBPETokenizer as BPETrainer

from bertgen_mini import default_bert_dir
from bertgen_mini.data import load_wikisplit
from bertgen_mini.tokenizer_bpe import GPT2Tokenizer, RobertaTokenizer
from bertgen_mini.tokenizer_sentencepiece import BertGenerationTokenizer
from bertgen_mini.tokenizer_wordpiece import BertTokenizer

ROUNDS = int(os.environ.get("ROUNDS", 2))


def best_time(fn, rounds=ROUNDS):
    """Fastest wall time of `rounds` calls of fn(), in seconds."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def best_times_in_turn(fns, rounds=ROUNDS):
    """Fastest wall time of each fn in `fns`, over `rounds` rounds that call them one after the other."""
    times = [[] for _ in fns]
    for _ in range(rounds):
        for fn, fn_times in zip(fns, times):
            start = time.perf_counter()
            fn()
            fn_times.append(time.perf_counter() - start)
    return [min(fn_times) for fn_times in times]


def report(name, ours, theirs, their_name):
    print(f"{name:<34} ours {ours:6.2f} s   {their_name} {theirs:6.2f} s   ratio {ours / theirs:5.1f}x")


def main():
    transformers.logging.set_verbosity_error()
    pairs = load_wikisplit("tune") + load_wikisplit("validation")
    texts = [text for pair in pairs for text in pair]
    print(f"{len(texts)} texts, {sum(map(len, texts)) / 1e6:.1f} M characters, best of {ROUNDS}")

    bert_dir = default_bert_dir()
    theirs = transformers.BertTokenizer.from_pretrained(str(bert_dir))
    ours_cold = best_time(lambda: BertTokenizer.from_pretrained(bert_dir)(texts))  # a fresh word cache each time
    ours = BertTokenizer.from_pretrained(bert_dir)
    ours(texts)
    assert ours(texts)["input_ids"] == theirs(texts)["input_ids"], "WordPiece ids differ from transformers"
    their_call, rust = best_time(lambda: theirs(texts)), best_time(lambda: theirs._tokenizer.encode_batch(texts))
    report("WordPiece encode, cold cache", ours_cold, their_call, "transformers")
    report("WordPiece encode, warm cache", best_time(lambda: ours(texts)), their_call, "transformers")
    report("WordPiece encode, cold vs bare Rust", ours_cold, rust, "Rust encode_batch")
    ids = theirs(texts)["input_ids"]
    report("WordPiece decode", best_time(lambda: ours.batch_decode(ids)), best_time(lambda: theirs.batch_decode(ids)),
           "transformers")

    with tempfile.TemporaryDirectory() as folder:
        tune = [text for pair in load_wikisplit("tune") for text in pair]
        start = time.perf_counter()
        BertGenerationTokenizer.train(tune, vocab_size=2000).save_pretrained(folder)
        print(f"sentencepiece training on tune.tsv (vocab 2000): {time.perf_counter() - start:.2f} s")
        ours_sp = BertGenerationTokenizer.from_pretrained(folder)
        theirs_sp = transformers.BertGenerationTokenizer.from_pretrained(folder)
    assert ours_sp(texts)["input_ids"] == theirs_sp(texts)["input_ids"], "sentencepiece ids differ from transformers"
    ours_time, their_time = best_time(lambda: ours_sp(texts)), best_time(lambda: theirs_sp(texts))
    report("sentencepiece encode", ours_time, their_time, "transformers")
    ids = theirs_sp(texts)["input_ids"]
    report("sentencepiece decode", best_time(lambda: ours_sp.batch_decode(ids)),
           best_time(lambda: theirs_sp.batch_decode(ids)), "transformers")

    with tempfile.TemporaryDirectory() as folder:
        trainer = BPETrainer()
        start = time.perf_counter()
        trainer.train_from_iterator(tune, vocab_size=16000, min_frequency=2, show_progress=False,
                                    special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>", "<|endoftext|>"])
        trainer.save_model(folder)
        print(f"byte-level BPE training on tune.tsv (vocab {trainer.get_vocab_size()}): "
              f"{time.perf_counter() - start:.2f} s")
        for ours_class, their_class in ((GPT2Tokenizer, transformers.GPT2Tokenizer),
                                        (RobertaTokenizer, transformers.RobertaTokenizer)):
            name, ours_bpe, theirs_bpe = ours_class.__name__, ours_class(folder), their_class.from_pretrained(folder)
            ids = theirs_bpe(texts)["input_ids"]
            assert ours_bpe(texts)["input_ids"] == ids, f"{name} ids differ from transformers"
            ours_cold, ours_warm, their_call, rust = best_times_in_turn([
                lambda: ours_class(folder)(texts),  # a fresh word cache each time
                lambda: ours_bpe(texts), lambda: theirs_bpe(texts), lambda: theirs_bpe._tokenizer.encode_batch(texts)])
            report(f"{name} encode, cold cache", ours_cold, their_call, "transformers")
            report(f"{name} encode, warm cache", ours_warm, their_call, "transformers")
            report(f"{name} encode, cold vs bare Rust", ours_cold, rust, "Rust encode_batch")
            ours_decode, their_decode = best_times_in_turn([lambda: ours_bpe.batch_decode(ids),
                                                            lambda: theirs_bpe.batch_decode(ids)])
            report(f"{name} decode", ours_decode, their_decode, "transformers")

if __name__ == "__main__":
    main()
