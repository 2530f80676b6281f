"""The key/value cache: what a decoder keeps between generation steps so that each step computes one position.

At step t self-attention needs the keys and values of positions 0..t; without a cache every step recomputes all
of them (t positions of work), with it only the newest (one position). Cross-attention's keys and values come from
the encoder output, which does not change while decoding: they are computed at the first step and reused.
"""
import torch


class KVCache:
    """Keys and values kept between generation steps, per decoder layer.

    Self-attention entries grow by one position a step; cross-attention entries are computed once per source
    (the encoder output does not change while decoding) and reused. Each entry is a pair of (B, nh, T, hs) tensors.
    """

    def __init__(self, num_layers: int):
        self.self_attention = [None] * num_layers
        self.cross_attention = [None] * num_layers

    def get_seq_length(self) -> int:
        """How many decoder positions are already cached."""
        first = self.self_attention[0]
        return 0 if first is None else first[0].shape[2]

    def repeat_rows(self, copies: int) -> None:
        """Each row becomes `copies` consecutive rows: the beams (or samples) of one source share its first step."""
        for entries in (self.self_attention, self.cross_attention):
            for i, kv in enumerate(entries):
                if kv is not None:
                    entries[i] = tuple(t.repeat_interleave(copies, dim=0) for t in kv)

    def reorder(self, rows: torch.Tensor) -> None:
        """Row i continues old row rows[i] (beam search moved hypotheses). Only self-attention entries move: a beam
        never leaves its source, so the cross-attention rows it would take hold the same keys and values."""
        for i, kv in enumerate(self.self_attention):
            if kv is not None:
                self.self_attention[i] = tuple(t.index_select(0, rows) for t in kv)
