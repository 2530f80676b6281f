"""Checks for notebook 07 (the paper's experiment)."""
import math

from . import check, check_prediction, check_written, require


def check_beats_copy(beats_copy) -> bool:
    """07.2: beats_copy(rows, task) -> the recipes whose SARI on `task` is above the copy baseline's, checked on
    made-up results rows."""
    def test():
        scores = {("split", "copy"): 30.0, ("split", "bert2bert"): 44.0, ("split", "bertshare"): 29.0,
                  ("split", "rnd2rnd"): 31.0, ("fuse", "copy"): 50.0, ("fuse", "bert2bert"): 41.0,
                  ("fuse", "rnd2rnd"): 12.0}
        rows = [{"task": task, "recipe": recipe, "sari": sari, "bleu": 99.0 - sari}
                for (task, recipe), sari in scores.items()]
        for task, expected in (("split", {"bert2bert", "rnd2rnd"}), ("fuse", set())):
            got = beats_copy(rows, task)
            require(isinstance(got, (list, tuple, set)), f"return a list of recipe names, not {type(got).__name__}")
            if "copy" in got:
                hint = "Leave out the copy row itself."
            elif set(got) - {r["recipe"] for r in rows if r["task"] == task}:
                hint = "Compare only rows of the same task."
            else:
                hint = "Compare each recipe's SARI with the 'copy' row of the same task (not BLEU)."
            require(set(got) == expected and len(got) == len(set(got)),
                    f"on made-up rows for {task!r} you returned {sorted(got)}, expected {sorted(expected)}. {hint}")
        return "(on made-up rows; an empty list is a possible answer)"
    return check("07.2", test, beats_copy)


def check_share_ratio_prediction(predicted_ratio) -> bool:
    """07.1: bertshare's unique parameters as a fraction of bert2bert's (MiniLM). The tolerance, 0.01, is well
    below the 0.04 between the truth and the naive answer 0.5 (two halves, one shared): telling them apart is what
    the exercise is about."""
    from ..recipes import build_model

    def unique_parameters(recipe):
        model = build_model(recipe, verbose=False)
        return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())

    def hint(guess, truth):
        if math.isclose(guess, 0.5, abs_tol=0.01):
            return ("Half would be right if the decoder were the encoder exactly; what does the decoder have that "
                    "the encoder does not, and how big is it?")
        if guess > 1:
            return "Give a fraction between 0 and 1, not a percentage."
        return None

    truth = lambda: round(unique_parameters("bertshare") / unique_parameters("bert2bert"), 3)
    return check_prediction("07.1", predicted_ratio, truth, "bertshare shares the embeddings, self-attention and "
                            "feed-forward blocks between encoder and decoder; the cross-attention (decoder only) and "
                            "the LM-head bias are its own.", close=0.01, hint=hint)


def check_budget_answer(answer) -> bool:
    """07.3 (written): what this budget cannot tell about the encoder against the decoder."""
    return check_written("07.3", answer, [
        "bert2rnd and rnd2bert are both below copying the input: both still babble, and the order of two babbling "
        "models (a point or two, one seed, 100 sentences) is noise.",
        "Testing it needs a budget where the random halves beat copying: many more steps and pairs (e.g. the gpu "
        "preset on WikiSplit's full training split).",
        "And several seeds, so the gap between bert2rnd and rnd2bert can be compared with the spread between "
        "seeds."])


EXERCISES = {"07.1": (check_share_ratio_prediction, "predicted_ratio", "value"),
             "07.2": (check_beats_copy, "beats_copy", "function"),
             "07.3": (check_budget_answer, "budget_answer", "written")}
