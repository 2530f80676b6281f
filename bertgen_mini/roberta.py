"""RoBERTa checkpoints as BertGeneration halves: roberta2roberta, robertashare and roberta2gpt (Rothe, Narayan &
Severyn, TACL 2020, Table 1).

RoBERTa (Liu et al. 2019) is BERT's architecture, pretrained longer on more text with byte-level BPE, and its
weights have BERT's names (under `roberta.` in the models with a head). Two things in its embeddings differ:

* positions are numbered from padding_idx + 1 (fairseq's convention, padding_idx = 1): the token at index i of a
  right-padded sequence reads row i + padding_idx + 1 of the position table, and padding reads row padding_idx;
* it has one token type, whose vector it adds to every token.

BertGeneration numbers positions from 0 and has no token types, so reading a RoBERTa checkpoint slices the table
and folds the type vector into it (both are added to the word vector before the LayerNorm):

    position_embeddings'[i] = position_embeddings[i + padding_idx + 1] + token_type_embeddings[0]

The encoder then computes what RobertaModel computes on every real (non-padding) token of a right-padded batch;
padding positions differ, and nothing reads them (the attention mask hides them). The pooler and the MLM head
(`lm_head.dense`, `lm_head.layer_norm`, `lm_head.bias`: a transform BertGeneration's LM head does not have) are
dropped, as BERT's are. References: transformers' `RobertaEmbeddings` (`create_position_ids_from_input_ids`).
"""
MLM_HEAD = "lm_head."


def position_offset(pad_token_id) -> int:
    """Rows of RoBERTa's position table before its first real position: padding_idx + 1."""
    if pad_token_id is None:
        raise ValueError("A RoBERTa config.json needs its pad_token_id: RoBERTa numbers positions from it.")
    return pad_token_id + 1


def roberta_config_values(values: dict) -> dict:
    """A RoBERTa config.json's values for BertGenerationConfig: the position table padding_idx + 1 rows shorter
    (514 -> 512 for roberta-base); pad, bos and eos ids, layer_norm_eps and sizes carry over as they are."""
    pad = values.get("pad_token_id", 1)
    positions = values.get("max_position_embeddings", 512) - position_offset(pad)
    if positions < 1:
        raise ValueError(f"max_position_embeddings={values.get('max_position_embeddings')} leaves no position after "
                         f"RoBERTa's offset of {position_offset(pad)} rows: the config.json is damaged.")
    return {**values, "pad_token_id": pad, "max_position_embeddings": positions}


def from_roberta(tensors: dict, pad_token_id: int) -> tuple[dict, dict, list]:
    """RoBERTa tensors (RobertaModel, RobertaForMaskedLM or RobertaForCausalLM) -> (tensors under BertGeneration's
    names with the position table sliced and the type vector folded in, the MLM head's tensors dropped, notes that
    say what was done, for the load report)."""
    offset = position_offset(pad_token_id)
    converted, dropped = {}, {}
    for name, tensor in tensors.items():
        if name.startswith(MLM_HEAD):
            dropped[name] = tensor
        else:
            converted[name.removeprefix("roberta.")] = tensor
    try:
        positions = converted.pop("embeddings.position_embeddings.weight")    # (offset + P, d)
        types = converted.pop("embeddings.token_type_embeddings.weight")      # (type_vocab_size, d)
    except KeyError as err:
        raise ValueError(f"This RoBERTa checkpoint has no {err.args[0]}: it is incomplete. Copy or download it "
                         "again.") from None
    folded = positions[offset:].float() + types[0].float()                  # (P, d), summed in fp32
    converted["embeddings.position_embeddings.weight"] = folded.to(positions.dtype)
    notes = [f"RoBERTa positions start at padding_idx + 1 = {offset}: position_embeddings rows 0-{offset - 1} "
             f"dropped, rows {offset}-{len(positions) - 1} became 0-{len(positions) - offset - 1}",
             "RoBERTa's token-type vector (token_type_embeddings[0], added to every token) folded into "
             "position_embeddings" + (f"; its {len(types) - 1} other type rows dropped" if len(types) > 1 else "")]
    if dropped:
        notes.append("RoBERTa's MLM head dropped (lm_head.dense, lm_head.layer_norm, lm_head.bias): BertGeneration's "
                     "LM head is the word-embedding matrix and a bias of its own")
    return converted, dropped, notes
