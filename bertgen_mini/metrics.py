"""Scores for sentence splitting (WikiSplit) and fusion (DiscoFuse): exact match, SARI and BLEU.

References:
- Xu, Napoles, Pavlick, Chen & Callison-Burch, "Optimizing Statistical Machine Translation for Text
  Simplification", TACL 2016: SARI, the mean of how well n-grams are kept, deleted and added.
- SARI here matches Google's `sari_hook.py` (tensor2tensor `tensor2tensor/utils/sari_hook.py`, copied unchanged
  into google-research/lasertagger). Its choices, which differ from Xu's original `SARI.py`: an n-gram counts once
  however often it occurs; 0/0 counts as 1; deletion by precision only unless beta_for_deletion says otherwise.
- The published WikiSplit and DiscoFuse SARI (LaserTagger's 61.7: Malmi, Krause, Rothe, Mirylenka & Severyn,
  EMNLP 2019, two of them authors of Rothe et al.) were scored by LaserTagger's `score_lib.py` on top of it:
  lower-cased, the `<::::>` separators dropped, deletion by F1 (beta_for_deletion=1). `published_sari` does that,
  and `score_all` reports it as "sari". It matters for the copy baseline: with deletion by precision alone,
  deleting nothing is a perfect deletion score, and copying WikiSplit sources scores 62.7 on validation, above
  LaserTagger's 61.7; with F1 it scores 30. `score_all` also reports sari_hook's defaults as "sari_t2t".
- Papineni et al., "BLEU", ACL 2002, computed by sacrebleu (Post, WMT 2018) with its default `13a` tokenizer.

Text is split on whitespace, as the public WikiSplit/DiscoFuse files are already tokenized. The WikiSplit
sentence separator `<::::>` is an ordinary token, except in `published_sari`, which drops it. Every scorer takes,
for each example, one reference string or a list of reference strings.
"""
import re
from collections import Counter
from itertools import zip_longest
from typing import NamedTuple, Sequence, Union

import sacrebleu

References = Sequence[Union[str, Sequence[str]]]  # one str or a list of str per example


class SariScores(NamedTuple):
    """SARI and its three parts: sari = (keep + add + delete) / 3."""
    sari: float
    keep: float
    add: float
    delete: float


def normalize_whitespace(text: str) -> str:
    """Collapse runs of whitespace to one space and strip the ends: 'a  b\\n' -> 'a b'."""
    return " ".join(text.split())


def _reference_lists(references: References, n_predictions: int) -> list[list[str]]:
    """Every example's references as a list, checking there is one entry per prediction. One string is refused, not
    read as a list: its characters would be scored as references, and whether it is the one reference of a single
    prediction or meant for all of them cannot be told."""
    if isinstance(references, str):
        raise TypeError(f"references is one string ({references[:40]!r}): pass a list with one reference (or one "
                        "list of references) per prediction, e.g. [reference] for a single prediction.")
    if len(references) != n_predictions:
        raise ValueError(f"Got {n_predictions} predictions but {len(references)} references: "
                         "pass one reference (or one list of references) per prediction.")
    if n_predictions == 0:
        raise ValueError("Nothing to score: the lists of predictions and references are empty.")
    return [[ref] if isinstance(ref, str) else list(ref) for ref in references]


def exact_match(predictions: Sequence[str], references: References) -> float:
    """Percentage (0..100) of predictions equal to one of their references after whitespace normalisation."""
    ref_lists = _reference_lists(references, len(predictions))
    hits = sum(normalize_whitespace(pred) in {normalize_whitespace(r) for r in refs}
               for pred, refs in zip(predictions, ref_lists))
    return 100.0 * hits / len(predictions)


# ---------------------------------------------------------------------------------------------------- SARI

def _ngram_set(tokens: list[str], n: int) -> Counter:
    """The distinct n-grams of `tokens`, each with count 1 (sari_hook ignores repeats)."""
    return Counter({tuple(tokens[i:i + n]): 1 for i in range(len(tokens) - n + 1)})


def _f_score(true_positives: float, selected: float, relevant: float, beta: float = 1.0) -> float:
    """F-beta of a selection. Nothing selected gives precision 1, nothing relevant gives recall 1: a system that
    correctly does nothing is not punished. beta=0 is precision alone."""
    precision = true_positives / selected if selected > 0 else 1.0
    if beta == 0:
        return precision
    recall = true_positives / relevant if relevant > 0 else 1.0
    if precision == 0 or recall == 0:
        return 0.0
    b2 = beta * beta
    return (1 + b2) * precision * recall / (b2 * precision + recall)


def _total(counts: Counter) -> float:
    return sum(counts.values())


def _sari_one_order(source: Counter, prediction: Counter, weighted_refs: Counter, any_ref: Counter,
                    beta_for_deletion: float) -> tuple[float, float, float]:
    """Keep, add and delete scores for one n-gram order.

    `weighted_refs[g]` is the share of references holding g (r / R), `any_ref[g]` is 1 if any does. Counter `&` is
    a minimum and `-` drops results <= 0, so `source - weighted_refs` leaves 1 - r/R: how strongly g should go.
    """
    kept, should_keep = source & prediction, source & weighted_refs
    keep = _f_score(_total(kept & should_keep), _total(kept), _total(should_keep))

    deleted, should_delete = source - prediction, source - weighted_refs
    delete = _f_score(_total(deleted & should_delete), _total(deleted), _total(should_delete), beta_for_deletion)

    added, should_add = prediction - source, any_ref - source  # added n-grams are new, so a reference hit is right
    add = _f_score(_total(added & any_ref), _total(added), _total(should_add))
    return keep, add, delete


def sentence_sari(source: str, prediction: str, references: Union[str, Sequence[str]],
                  max_n: int = 4, beta_for_deletion: float = 0.0) -> SariScores:
    """SARI of one prediction, each part in 0..1, exactly as sari_hook's `get_sari_score`.

    source, prediction: whitespace-tokenized strings. references: one string or a list of them.
    Each of keep/add/delete is averaged over n = 1..max_n, then sari is the mean of the three.
    """
    refs = [references] if isinstance(references, str) else list(references)
    src_tokens, pred_tokens = source.split(), prediction.split()
    ref_tokens = [ref.split() for ref in refs]
    parts = []
    for n in range(1, max_n + 1):
        ref_sets = [s for s in (_ngram_set(tokens, n) for tokens in ref_tokens) if s]  # refs too short for n drop out
        any_ref = Counter({gram: 1 for s in ref_sets for gram in s})
        weighted_refs = Counter({gram: sum(gram in s for s in ref_sets) / len(ref_sets) for gram in any_ref})
        parts.append(_sari_one_order(_ngram_set(src_tokens, n), _ngram_set(pred_tokens, n),
                                     weighted_refs, any_ref, beta_for_deletion))
    keep, add, delete = (sum(column) / max_n for column in zip(*parts))
    return SariScores((keep + add + delete) / 3, keep, add, delete)


def corpus_sari(sources: Sequence[str], predictions: Sequence[str], references: References,
                max_n: int = 4, beta_for_deletion: float = 0.0) -> SariScores:
    """Mean of `sentence_sari` over the examples, each part scaled to 0..100 as papers report it."""
    ref_lists = _reference_lists(references, len(predictions))
    if len(sources) != len(predictions):
        raise ValueError(f"Got {len(sources)} sources but {len(predictions)} predictions: they must pair up.")
    scores = [sentence_sari(s, p, r, max_n, beta_for_deletion) for s, p, r in zip(sources, predictions, ref_lists)]
    return SariScores(*(100.0 * sum(column) / len(scores) for column in zip(*scores)))


# WikiSplit's sentence separator, as written (<::::>) and as WordPiece spells it out (< : : : : >).
SEPARATOR = re.compile(r"<(?:\s*:){4}\s*>")


def published_sari(sources: Sequence[str], predictions: Sequence[str], references: References) -> SariScores:
    """Corpus SARI as published WikiSplit/DiscoFuse results score it (LaserTagger's score_lib.py): every text
    lower-cased, `<::::>` separators dropped, deletion by F1 (beta_for_deletion=1), then `corpus_sari`."""
    def clean(text: str) -> str:
        return SEPARATOR.sub(" ", text.lower())
    ref_lists = _reference_lists(references, len(predictions))
    return corpus_sari([clean(s) for s in sources], [clean(p) for p in predictions],
                       [[clean(r) for r in refs] for refs in ref_lists], beta_for_deletion=1.0)


# ---------------------------------------------------------------------------------------------------- BLEU

def corpus_bleu(predictions: Sequence[str], references: References, tokenize: str = "13a") -> float:
    """Corpus BLEU (0..100) by sacrebleu; examples may have different numbers of references.

    The default `13a` tokenizer splits punctuation, so WikiSplit's `<::::>` becomes `< : : : : >` whether a model
    wrote it spaced (as WordPiece decoding does) or not; `tokenize="none"` scores the whitespace tokens as they are.
    """
    ref_lists = _reference_lists(references, len(predictions))
    ref_streams = [list(stream) for stream in zip_longest(*ref_lists)]  # sacrebleu skips the None fillers
    # force=True: the texts are tokenized on purpose, so sacrebleu's "forgot to detokenize?" warning is noise.
    return sacrebleu.corpus_bleu(list(predictions), ref_streams, tokenize=tokenize, force=True).score


def score_all(sources: Sequence[str], predictions: Sequence[str], references: References) -> dict[str, float]:
    """The paper's three numbers for a test set, each 0..100: {"exact", "sari" (as published, `published_sari`),
    "bleu"}, plus "sari_t2t": sari_hook's defaults (separators kept, deletion by precision alone)."""
    return {"exact": exact_match(predictions, references),
            "sari": published_sari(sources, predictions, references).sari,
            "sari_t2t": corpus_sari(sources, predictions, references).sari,
            "bleu": corpus_bleu(predictions, references)}
