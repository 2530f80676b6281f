"""Beam search: keep the num_beams best partial outputs per source, all sources and beams in one batch.

Each step every live beam proposes its continuations; of the num_beams * V candidates per source the 2 * num_beams
best by total log-probability are kept (twice as many, so that even if half of them end, num_beams can go on).
Candidates that produced the end token (or reached the length limit) join that source's finished hypotheses,
ranked by

    score(y) = sum_t log p(y_t | y_<t, x) / len(y) ** length_penalty

where len(y) counts the generated tokens, the end token included. A source is done when its num_beams finished
hypotheses cannot be beaten any more: `early_stopping=True` stops as soon as there are num_beams of them, False
guesses the best a live beam could still score from its current length, "never" from the longest length allowed
(when length_penalty > 0). The rules, the 1e9 penalties and the tie-breaking are those of transformers'
`_beam_search`, so both pick the same tokens.

References: Wu et al. 2016 (GNMT, length penalty); transformers' `GenerationMixin._beam_search`.
"""
import torch
import torch.nn.functional as F

from .logits_processors import process_scores

PENALTY = -1.0e9  # pushed onto candidates that must not be chosen (finite, as transformers does, so ties stay stable)


def gather_beams(tensor, index):
    """tensor (B, K, ...) -> (B, k, ...) taking entries index (B, k) along the beam axis."""
    index = index.view(*index.shape, *([1] * (tensor.dim() - 2)))
    return tensor.take_along_dim(index, dim=1)


def pick_candidates(totals, k, settings):
    """totals (B, nb * V) running scores of every continuation -> the (B, k) scores and flat indices chosen, best
    first: the k best, or (do_sample) k drawn without replacement from softmax(totals)."""
    if not settings.do_sample:
        return totals.topk(k, dim=-1)
    drawn = torch.multinomial(totals.softmax(dim=-1), k, generator=settings.generator)    # (B, k)
    scores, order = totals.gather(1, drawn).sort(dim=-1, descending=True)
    return scores, drawn.gather(1, order)


def beam_search(runner, prompt, settings):
    """prompt (B, T) -> (sequences (B * R, L), sequences_scores (B * R,), per-step scores list), R =
    num_return_sequences. `runner.next_logits(ids)` gives next-token logits for (B * nb, t) ids and
    `runner.reorder(rows)` follows the beams in the cache."""
    s = settings
    B, T = prompt.shape
    nb, K, max_len, device = s.num_beams, 2 * s.num_beams, T + s.max_new_tokens, prompt.device
    lp = s.length_penalty
    running = prompt.new_full((B, nb, max_len), s.pad_token_id)           # (B, nb, L) live beams
    running[:, :, :T] = prompt[:, None]
    running_scores = torch.zeros(B, nb, device=device)                    # sum of log-probs of each live beam
    running_scores[:, 1:] = PENALTY                                       # all beams start equal: use only one
    finished = running.clone()                                            # (B, nb, L) best ended hypotheses
    finished_scores = torch.full((B, nb), PENALTY, device=device)         # length-penalised
    finished_lens = torch.full((B, nb), T, device=device)                 # tokens, prompt included
    is_finished = torch.zeros(B, nb, dtype=torch.bool, device=device)
    improvable = torch.ones(B, 1, dtype=torch.bool, device=device)        # can a live beam still beat them?
    row_offset = torch.arange(B, device=device)[:, None] * nb            # (B, 1) first flat row of each source
    in_top_nb = torch.arange(K, device=device) < nb                       # only these candidates may finish
    step_scores = []
    for cur in range(T, max_len):
        flat = running[:, :, :cur].reshape(B * nb, cur)
        log_probs = F.log_softmax(runner.next_logits(flat), dim=-1)
        log_probs = process_scores(log_probs, flat, s, cur - T)          # (B * nb, V)
        if s.output_scores:
            step_scores.append(log_probs)
        V = log_probs.shape[-1]
        totals = (log_probs.view(B, nb, V) + running_scores[:, :, None]).view(B, nb * V)
        cand_scores, cand_index = pick_candidates(totals, K, s)            # (B, K)
        cand_beam, cand_token = cand_index // V, cand_index % V
        candidates = gather_beams(running, cand_beam)                      # (B, K, L)
        candidates[:, :, cur] = cand_token
        if cur + 1 == max_len:  # the length limit ends every candidate
            ends = torch.ones_like(cand_token, dtype=torch.bool)
        else:
            ends = cand_token == (-1 if s.eos_token_id is None else s.eos_token_id)

        # Live beams for the next step: the nb best candidates that did not end.
        live_scores = cand_scores + ends.float() * PENALTY
        keep = live_scores.topk(nb, dim=-1).indices                       # (B, nb)
        running, running_scores = gather_beams(candidates, keep), gather_beams(live_scores, keep)
        runner.reorder((gather_beams(cand_beam, keep) + row_offset).view(-1))

        # Finished hypotheses: merge the candidates that just ended into the nb best so far.
        new_scores = cand_scores / ((cur + 1 - T) ** lp)
        full = is_finished.all(dim=1, keepdim=True) & (s.early_stopping is True)
        new_scores = new_scores + full.float() * PENALTY
        new_scores = new_scores + (~improvable).float() * PENALTY
        just_ended = ends & in_top_nb
        new_scores = new_scores + (~just_ended).float() * PENALTY
        best = torch.cat([finished_scores, new_scores], dim=1).topk(nb, dim=-1).indices
        finished = gather_beams(torch.cat([finished, candidates], dim=1), best)
        finished_scores = gather_beams(torch.cat([finished_scores, new_scores], dim=1), best)
        finished_lens = gather_beams(torch.cat([finished_lens, torch.full_like(cand_token, cur + 1)], dim=1), best)
        is_finished = gather_beams(torch.cat([is_finished, just_ended], dim=1), best)

        # Stop when no source can improve, or (early_stopping=True) every source has nb finished hypotheses.
        length = (max_len - T) if (s.early_stopping == "never" and lp > 0) else (cur + 1 - T)
        best_possible = running_scores[:, :1] / (length ** lp)            # (B, 1)
        worst_finished = torch.where(is_finished, finished_scores.min(dim=1, keepdim=True).values, PENALTY)
        improvable = improvable & (best_possible > worst_finished).any(dim=1, keepdim=True)
        if not improvable.any() or (s.early_stopping is True and is_finished.all()) or ends.all():
            break

    R = s.num_return_sequences
    out_len = int(finished_lens[:, :R].max())
    return finished[:, :R, :out_len].reshape(B * R, out_len), finished_scores[:, :R].reshape(B * R), step_scores
