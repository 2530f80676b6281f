"""Solutions to notebook 09 (other checkpoints: byte-level BPE, RoBERTa, GPT-2)."""


def apply_merges(word, merge_ranks):
    """09.1: byte-pair merges on one word written in stand-in characters ("Ġlower"): start from single characters,
    merge the adjacent pair with the lowest rank (the leftmost of equal ones), and repeat until no adjacent pair is
    listed in merge_ranks ({(left, right): rank})."""
    pieces = list(word)
    while len(pieces) > 1:
        ranks = [merge_ranks.get(pair, float("inf")) for pair in zip(pieces, pieces[1:])]
        best = min(ranks)
        if best == float("inf"):
            break
        i = ranks.index(best)  # index() finds the leftmost of equal ranks
        pieces[i:i + 2] = [pieces[i] + pieces[i + 1]]
    return pieces


def fold_positions(position_embeddings, token_type_embeddings, pad_token_id):
    """09.2: RoBERTa's position table (P + pad_token_id + 1, d) and token-type table (types, d) -> BertGeneration's
    position table (P, d): row i is RoBERTa's row i + pad_token_id + 1 plus the one type vector RoBERTa adds to every
    token."""
    offset = pad_token_id + 1
    return position_embeddings[offset:] + token_type_embeddings[0]


# 09.3: enc_to_dec_proj is nn.Linear(384, 64): a weight of 64 x 384 = 24,576 and a bias of 64.
predicted_projection = 384 * 64 + 64

# 09.4
other_checkpoints_answer = """bert2gpt reads WordPiece and writes GPT-2's byte-level BPE: the decoder's embeddings
have never met the encoder's, so even copying a word from the source, which is most of WikiSplit, has to be learned
from scratch by the new cross-attention (and here by a new enc_to_dec_proj between the two widths). roberta2roberta
reads and writes one vocabulary, so the same word has the same kind of vector on both sides, and robertashare even
uses one table. GPT-2 was pretrained to continue text, not to condition on a source, so its fluency does not help
with what the task needs first: looking at the input. RoBERTa also saw more pretraining data, and its cased BPE can
write back any text exactly. The paper found GPT-2 decoders behind BERT and RoBERTa ones for these tasks."""
