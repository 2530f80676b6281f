"""Solutions to notebook 01 (tokenizers)."""


def make_example(source, target, tokenizer, max_length):
    """01.1: one training example: the source ids, the labels (target ids + end token) and the decoder input."""
    input_ids = tokenizer(source, truncation=True, max_length=max_length)["input_ids"]
    labels = tokenizer(target, truncation=True, max_length=max_length - 1)["input_ids"] + [tokenizer.eos_token_id]
    return {"input_ids": input_ids, "labels": labels, "decoder_input_ids": [tokenizer.bos_token_id] + labels[:-1]}


# 01.2: the basic pass lower-cases ("Café" -> "cafe"), strips the accent and splits off the "!"; "cafe" is in the
# vocabulary, so it stays one piece.
predicted_pieces = ["cafe", "!"]

# 01.3
separator_answer = """The model writes its output one token at a time, choosing each token from its vocabulary. If
<::::> is one token, writing the separator is one decision, learned from one embedding, and decoding gives back
exactly "<::::>". Cut into six punctuation pieces ("<", ":", ":", ":", ":", ">"), the model must write six tokens in
the right order; each is also an ordinary punctuation mark with other meanings, a mistake half-way leaves a broken
separator (the output can no longer be split into sentences), settings such as no_repeat_ngram_size can forbid the
repeated ": :" it needs, and decoding joins the pieces with spaces ("< : : : : >"), which is no longer the
separator. Sequences also get five tokens longer per split."""
