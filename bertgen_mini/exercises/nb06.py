"""Checks for notebook 06 (decoding strategies)."""
import math

import torch

from . import check, check_prediction, check_written, require, tiny_pair


def check_beam_score(beam_score) -> bool:
    """06.1: beam_score(token_log_probs, alpha), checked against the sequences_scores of a tiny random model's beam
    search: the token log-probabilities come from teacher forcing its returned beams."""
    def test():
        model = tiny_pair(0)
        source = torch.tensor([[2, 5, 6, 7, 8, 3]])
        for alpha in (0.0, 1.5):
            out = model.generate(source, max_new_tokens=8, num_beams=4, num_return_sequences=4, length_penalty=alpha,
                                 return_dict_in_generate=True)
            with torch.no_grad():
                logits = model(input_ids=source.expand(4, -1), decoder_input_ids=out.sequences[:, :-1]).logits
            token_lp = logits.log_softmax(-1).gather(2, out.sequences[:, 1:, None])[..., 0]   # (4, L-1)
            for row, (tokens, expected) in enumerate(zip(out.sequences.tolist(), out.sequences_scores.tolist())):
                generated = tokens[1:]
                n = generated.index(1) + 1 if 1 in generated else len(generated)   # up to the end token, included
                got = float(beam_score(token_lp[row, :n], alpha))
                total = float(token_lp[row, :n].sum())
                if math.isclose(got, total / (n - 1) ** alpha, rel_tol=1e-4) and alpha:
                    hint = "Count the end token in |y|."
                elif math.isclose(got, total / n, rel_tol=1e-4) or math.isclose(got, total * n ** alpha, rel_tol=1e-4):
                    hint = "Divide by |y| ** alpha, alpha being the length penalty."
                else:
                    hint = "Sum the log-probabilities, then divide by (number of generated tokens) ** alpha."
                require(math.isclose(got, expected, abs_tol=1e-4),
                        f"alpha={alpha}, beam {row}: your score is {got:.4f}, generate's {expected:.4f}. {hint} "
                        f"Here that number is {n}, the end token included.")
        return "(with alpha 0 and 1.5, on a tiny random model's beams)"
    return check("06.1", test, beam_score)


def check_top_p_prediction(predicted_kept) -> bool:
    """06.2: how many of the tokens with probabilities 0.5, 0.3, 0.15, 0.05 nucleus sampling with top_p=0.75 keeps."""
    from ..logits_processors import keep_top_p

    scores = torch.tensor([[0.5, 0.3, 0.15, 0.05]]).log()
    kept = lambda: int(torch.isfinite(keep_top_p(scores, 0.75)).sum())   # a blocked token's score is -inf
    hint = {1: "0.5 alone is below 0.75: the set must reach p, so it takes the next token too."}
    return check_prediction("06.2", predicted_kept, kept, "top_p keeps the smallest set of best tokens whose "
                            "probabilities add up to at least p.", hint=hint)


def check_length_answer(answer) -> bool:
    """06.3 (written): why beam search needs a length penalty."""
    return check_written("06.3", answer, [
        "Every token adds a negative log-probability, so the raw sum (alpha = 0) prefers short hypotheses: a beam "
        "that ends early can beat a better, longer output.",
        "Dividing by |y| ** alpha compares hypotheses per token: alpha > 0 favours longer outputs than the raw sum "
        "does (alpha = 1 ranks by the mean log-probability), alpha < 0 shorter ones.",
        "Greedy search never compares hypotheses of different lengths, so it needs no penalty."])


EXERCISES = {"06.1": (check_beam_score, "beam_score", "function"),
             "06.2": (check_top_p_prediction, "predicted_kept", "value"),
             "06.3": (check_length_answer, "length_answer", "written")}
