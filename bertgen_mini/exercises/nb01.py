"""Checks for notebook 01 (tokenizers)."""
from functools import lru_cache

from . import check, check_prediction, check_written, require


@lru_cache(maxsize=1)
def small_sentencepiece():
    """A 300-piece sentencepiece model trained on 200 WikiSplit pairs (under a second)."""
    from ..data import load_wikisplit
    from ..tokenizer_sentencepiece import BertGenerationTokenizer

    texts = [text for pair in load_wikisplit("tune")[:200] for text in pair]
    return BertGenerationTokenizer.train(texts, vocab_size=300)


def check_make_example(make_example) -> bool:
    """01.1: make_example(source, target, tokenizer, max_length) -> {input_ids, labels, decoder_input_ids}."""
    def test():
        tokenizer = small_sentencepiece()
        source = "The film was released in 1998 , and it was a success ."
        target = "The film was released in 1998 . <::::> It was a success ."
        for max_length in (8, 64):
            example = make_example(source, target, tokenizer, max_length)
            require(isinstance(example, dict), "return a dict with input_ids, labels and decoder_input_ids")
            require(set(example) >= {"input_ids", "labels", "decoder_input_ids"},
                    f"the dict needs the keys input_ids, labels, decoder_input_ids; it has {sorted(example)}")
            labels = list(example["labels"])
            require(list(example["input_ids"]) == tokenizer.encode(source)[:max_length],
                    f"input_ids (max_length={max_length}): the source ids, cut to max_length")
            require(len(labels) <= max_length, f"labels must fit max_length={max_length}, got {len(labels)} ids")
            require(labels[-1:] == [tokenizer.eos_token_id], "labels must end with the end token (eos_token_id)")
            require(labels[:-1] == tokenizer.encode(target)[:len(labels) - 1], "labels start with the target ids")
            decoder_input = list(example["decoder_input_ids"])
            require(decoder_input[:1] == [tokenizer.bos_token_id], "the decoder input starts with bos_token_id")
            require(decoder_input[1:] == labels[:-1], "decoder input = the labels shifted right by one")
        whole = make_example(source, target, tokenizer, 64)["labels"]
        require(list(whole) == tokenizer.encode(target) + [tokenizer.eos_token_id], "a short target is kept whole")
    return check("01.1", test, make_example)


def check_wordpiece_prediction(predicted_pieces) -> bool:
    """01.2: the WordPiece pieces of "Café!" (MiniLM's uncased vocabulary)."""
    from ..paths import default_bert_dir
    from ..tokenizer_wordpiece import BertTokenizer

    truth = lambda: BertTokenizer.from_pretrained(default_bert_dir()).tokenize("Café!")
    prediction = list(predicted_pieces) if isinstance(predicted_pieces, (list, tuple)) else predicted_pieces
    return check_prediction("01.2", prediction, truth, "The basic pass lower-cases, strips accents and splits off "
                            "every punctuation mark before WordPiece cuts the words.")


def check_separator_answer(answer) -> bool:
    """01.3 (written): why the separator must be one token."""
    return check_written("01.3", answer, [
        "One token: writing the separator is one decision, from one embedding, and decoding gives back exactly "
        "<::::>.",
        "Six pieces: six decisions in the right order, each an ordinary punctuation mark with other uses; one slip "
        "leaves a broken separator and the output can no longer be cut into sentences.",
        "Decoding joins pieces with spaces (< : : : : >), which is no longer the separator; sequences also get five "
        "tokens longer, and n-gram blocking could forbid the repeated ': :'."])


EXERCISES = {"01.1": (check_make_example, "make_example", "function"),
             "01.2": (check_wordpiece_prediction, "predicted_pieces", "value"),
             "01.3": (check_separator_answer, "separator_answer", "written")}
