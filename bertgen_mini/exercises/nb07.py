"""Checks for notebook 07 (the paper's experiment)."""
from . import check, check_prediction, check_written


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
            assert set(got) == expected and len(got) == len(set(got)), (
                f"on made-up rows for {task!r} you returned {sorted(got)}, expected {sorted(expected)}: compare each "
                f"recipe's SARI with the 'copy' row of the same task, and leave out the copy row itself.")
        return "(on made-up rows; an empty list is a possible answer)"
    return check("07.2", test)


def check_share_ratio_prediction(predicted_ratio) -> bool:
    """07.1: bertshare's unique parameters as a fraction of bert2bert's (MiniLM)."""
    from ..recipes import build_model

    def unique_parameters(recipe):
        model = build_model(recipe, verbose=False)
        return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())

    truth = lambda: round(unique_parameters("bertshare") / unique_parameters("bert2bert"), 3)
    return check_prediction("07.1", predicted_ratio, truth, "bertshare shares the embeddings, self-attention and "
                            "feed-forward blocks between encoder and decoder; the cross-attention (decoder only) and "
                            "the LM-head bias are its own.", close=0.05)


def check_budget_answer(answer) -> bool:
    """07.3 (written): what this budget cannot tell about the encoder against the decoder."""
    return check_written("07.3", answer, "nb07")


EXERCISES = {"07.1": (check_share_ratio_prediction, "predicted_ratio", "value"),
             "07.2": (check_beats_copy, "beats_copy", "function"),
             "07.3": (check_budget_answer, "budget_answer", "written")}
