"""Static figures (matplotlib): attention heatmaps of one layer and head, a grid of layers and heads (a few layers a
page), one decoder step as bars, a per-layer summary of how sharp and how monotonic the attention is, and the tree
of a beam search.

Every attention function takes an `AttentionCapture` (see attention_capture.py), returns the matplotlib Figure and, given
`save="figures/name.png"`, also writes it. Rows are queries, columns are keys, colour is the attention weight;
each row sums to one. In tick labels, special tokens ([CLS], [SEP], <s>, ...) are grey and word pieces that continue
a word (WordPiece `##ing`, or sentencepiece pieces without the `▁` word start) are orange, so word boundaries show.

References: Bahdanau, Cho & Bengio 2015 (alignment heatmaps); Clark et al. 2019 "What Does BERT Look At?"
(per-head maps and attention entropy); Vig 2019 (bertviz's layer x head overview).
"""
import re
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

from .attention_capture import AttentionCapture, attention_stats

CMAP = "viridis"
KIND_TITLES = {"encoder": "encoder self-attention", "decoder": "decoder self-attention", "cross": "cross-attention"}
AXIS_NAMES = {"source": "source token", "target": "generated token (the row's step writes it)",
              "decoder": "decoder input token (already written)"}
SPECIAL = re.compile(r"^(\[[A-Z]+\]|<[^<>\s]+>)$")  # [CLS], [SEP], [PAD], <s>, </s>, <pad>, ...
TOKEN_COLOURS = {"special": "0.55", "continuation": "tab:orange", "word": "black"}
MAX_LABEL = 14  # characters of a token label before it is cut with "…"
MAX_WIDTH = 10.0  # inches: wider figures are shrunk by JupyterLab until their 9-pt labels no longer read


def token_kind(token: str, sentencepiece: bool) -> str:
    """"special", "continuation" (a piece inside a word) or "word" (a piece that starts a word)."""
    if SPECIAL.match(token):
        return "special"
    if token.startswith("##") or (sentencepiece and not token.startswith("▁")):
        return "continuation"
    return "word"


def token_label(token: str) -> str:
    """A tick label for one token: markers kept (`##ing`, `▁the`), blanks made visible, long ones cut."""
    token = token.replace(" ", "␣") or "∅"
    return token if len(token) <= MAX_LABEL else token[:MAX_LABEL - 1] + "…"


def set_token_ticks(ax, axis: str, tokens: list) -> None:
    """Label the x or y axis of a heatmap with one tick per token, coloured by token_kind."""
    sentencepiece = any(t.startswith("▁") for t in tokens)
    positions = np.arange(len(tokens))
    if axis == "x":
        ax.set_xticks(positions, [token_label(t) for t in tokens], rotation=90, fontsize=9)
        labels = ax.get_xticklabels()
    else:
        ax.set_yticks(positions, [token_label(t) for t in tokens], fontsize=9)
        labels = ax.get_yticklabels()
    for label, token in zip(labels, tokens):
        label.set_color(TOKEN_COLOURS[token_kind(token, sentencepiece)])


def sentence_of(capture: AttentionCapture, width: int = 80) -> str:
    """The source sentence for a title, quoted and shortened to `width` characters."""
    text = capture.sentence or " ".join(capture.source_tokens)
    return "“" + (text if len(text) <= width else text[:width - 1] + "…") + "”"


def head_name(capture: AttentionCapture, head) -> str:
    return f"mean of {capture.num_heads} heads" if head == "mean" else f"head {head % capture.num_heads}"


def axis_names(kind: str) -> tuple:
    """(row name, column name) of a `kind` map."""
    return {"encoder": ("source", "source"), "decoder": ("target", "decoder"), "cross": ("target", "source")}[kind]


def heatmap_size(rows: int, cols: int) -> tuple:
    """Figure inches that keep cells about a quarter inch square, within what a notebook shows whole."""
    return min(3.0 + 0.28 * cols, MAX_WIDTH), min(2.2 + 0.28 * rows, 12.0)


def save_figure(fig, path) -> None:
    """Write `fig` to `path` (folders made as needed) at the resolution the README uses."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")


def new_axes(ax, size):
    """The figure and axes to draw on: the caller's, or a new pyplot figure of `size` inches."""
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=size, layout="constrained")
    return fig, ax


def plot_attention(capture: AttentionCapture, kind: str = "cross", layer: int = -1, head="mean", ax=None,
                   vmax=None, highlight_row=None, title=None, save=None):
    """Heatmap of one (queries, keys) map: a layer (negative counts from the top) and a head index or "mean".

    kind: "cross" (generated x source tokens), "encoder" (source x source) or "decoder" (generated x already
    written). vmax fixes the top of the colour scale (pass 1.0 to compare figures fairly); highlight_row frames one
    row. Draws on `ax` when given. Returns the Figure.
    """
    probs = capture.select(kind, layer, head).numpy()  # (Q, K)
    rows, cols = capture.query_tokens(kind), capture.key_tokens(kind)
    fig, ax = new_axes(ax, heatmap_size(len(rows), len(cols)))
    image = ax.imshow(probs, cmap=CMAP, vmin=0.0, vmax=vmax, aspect="auto", interpolation="nearest")
    fig.colorbar(image, ax=ax, label="attention weight", fraction=0.05, pad=0.02)
    set_token_ticks(ax, "x", cols)
    set_token_ticks(ax, "y", rows)
    row_name, col_name = axis_names(kind)
    ax.set_xlabel(AXIS_NAMES[col_name])
    ax.set_ylabel(AXIS_NAMES[row_name])
    if highlight_row is not None:
        ax.add_patch(plt.Rectangle((-0.5, highlight_row - 0.5), len(cols), 1, fill=False, edgecolor="red", lw=2))
    layer_index = layer % capture.num_layers
    ax.set_title(title or f"{KIND_TITLES[kind]} · layer {layer_index} · {head_name(capture, head)}\n"
                          f"{sentence_of(capture, 60)}", fontsize=10)
    if save:
        save_figure(fig, save)
    return fig


def plot_attention_grid(capture: AttentionCapture, kind: str = "cross", layers=None, save=None):
    """Layers (rows) x all heads (columns), plus a last column with the mean over heads, on one colour scale (the
    largest weight of any layer, so pages compare). layers: the layer indices to draw (default all; pass a few, e.g.
    range(0, 3), to page through a deep model at a readable size). Tokens are left off (see plot_attention for a
    labelled map). Returns the Figure."""
    maps = capture.maps(kind)
    layers = list(range(capture.num_layers)) if layers is None else [l % capture.num_layers for l in layers]
    nh = capture.num_heads
    vmax = max(float(m.max()) for m in maps)
    panel = min(1.25, (MAX_WIDTH - 1.0) / (nh + 1))  # inches a panel: the whole row fits MAX_WIDTH
    fig, axes = plt.subplots(len(layers), nh + 1, figsize=(panel * (nh + 1) + 1.0, panel * len(layers) + 1.0),
                             squeeze=False, layout="constrained")
    for row, layer in enumerate(layers):
        for col, head in enumerate(list(range(nh)) + ["mean"]):
            ax = axes[row, col]
            image = ax.imshow(capture.select(kind, layer, head).numpy(), cmap=CMAP, vmin=0.0, vmax=vmax,
                              aspect="auto", interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title("mean" if head == "mean" else f"head {head}", fontsize=9)
            if col == 0:
                ax.set_ylabel(f"layer {layer}", fontsize=9)
    fig.colorbar(image, ax=axes, label="attention weight", shrink=0.8)
    row_name, col_name = axis_names(kind)
    fig.suptitle(f"{KIND_TITLES[kind]}, layer × head (rows: {row_name}, columns: {col_name} tokens)\n"
                 f"{sentence_of(capture, 70)}", fontsize=10)
    if save:
        save_figure(fig, save)
    return fig


def plot_attention_step(capture: AttentionCapture, step: int, kind: str = "cross", layer: int = -1, head="mean",
                        ax=None, save=None):
    """One row of a map as bars: where query `step` puts its attention (for cross-attention: which source tokens
    the model reads while writing generated token `step`). Returns the Figure."""
    probs = capture.select(kind, layer, head)
    if not -len(probs) <= step < len(probs):
        raise IndexError(f"step {step} is out of range: this map has {len(probs)} rows (0..{len(probs) - 1}).")
    weights, keys = probs[step].numpy(), capture.key_tokens(kind)
    fig, ax = new_axes(ax, (heatmap_size(1, len(keys))[0], 3.2))
    ax.bar(np.arange(len(keys)), weights, color=matplotlib.colormaps[CMAP](0.35))
    set_token_ticks(ax, "x", keys)
    ax.set_ylim(0, max(1e-6, float(weights.max())) * 1.1)
    ax.set_ylabel("attention weight")
    query = capture.query_tokens(kind)[step]
    ax.set_title(f"{KIND_TITLES[kind]} · layer {layer % capture.num_layers} · {head_name(capture, head)}: "
                 f"row {step % len(probs)} ({token_label(query)})", fontsize=10)
    if save:
        save_figure(fig, save)
    return fig


def plot_attention_summary(captures, kind: str = "cross", save=None):
    """Per layer: mean entropy of the rows (low = sharp) and alignment monotonicity (1 = a steady left-to-right
    alignment, as a copy-like task such as WikiSplit needs). Each head is a dot, the mean over heads a line.

    captures: one AttentionCapture, or a dict {name: capture} to compare models (e.g. before / after fine-tuning).
    Returns the Figure.
    """
    if isinstance(captures, AttentionCapture):
        captures = {"": captures}
    fig, (ax_ent, ax_mono) = plt.subplots(1, 2, figsize=(MAX_WIDTH, 3.8), layout="constrained")
    ceiling = 0.0
    for i, (name, capture) in enumerate(captures.items()):
        stats, colour = attention_stats(capture, kind), f"C{i}"
        layers = np.arange(capture.num_layers)
        for ax, values in ((ax_ent, stats["entropy"]), (ax_mono, stats["monotonicity"])):
            values = values.numpy()  # (L, nh)
            ax.scatter(np.repeat(layers, values.shape[1]), values.ravel(), s=12, alpha=0.45, color=colour)
            ax.plot(layers, values.mean(1), "-o", color=colour, label=name or None)
        ax_ent.axhline(stats["uniform_entropy"], color=colour, ls="--", lw=1)
        ceiling = max(ceiling, stats["uniform_entropy"])
    ax_ent.set_ylim(0, ceiling * 1.08)
    ax_ent.set(xlabel="layer", ylabel="entropy of a row (bits)",
               title="sharpness (dashed: an even spread over every key)")
    ax_mono.set(xlabel="layer", ylabel="Spearman ρ (step, most-attended key)", ylim=(-1.05, 1.05),
                title="monotonicity of the alignment")
    ax_mono.axhline(0, color="0.6", lw=0.8)
    for ax in (ax_ent, ax_mono):
        ax.xaxis.get_major_locator().set_params(integer=True)
    if any(captures):
        ax_mono.legend(loc="lower right", fontsize=9)
    first = next(iter(captures.values()))
    fig.suptitle(f"{KIND_TITLES[kind]} per layer (dots: heads, line: their mean)\n{sentence_of(first)}",
                 fontsize=10)
    if save:
        save_figure(fig, save)
    return fig


# ---------------------------------------------------------------------------------------------- beam search

def plot_beam_tree(steps, returned, eos_token_id, to_token, save=None):
    """The tree of one beam search: every prefix that was ever a live beam is a node, joined to its parent (the
    prefix one token shorter); under each token, the running sum of log p. Grey nodes were pruned (no child at the
    next step); the returned hypotheses are drawn in colour, the best widest, each up to where it stopped: its end
    token, or the length limit.

    steps: [(live beams (nb, t) ids, log-probabilities of their next token (nb, V)), ...], one entry per step, as a
    recording DecoderRunner sees them (start token first). returned: (R, L) ids of the returned hypotheses, best
    first, padded after their end. to_token: id -> str. Returns the Figure."""
    log_probs_of = {tuple(row): lp for beams, log_probs in steps for row, lp in zip(beams.tolist(), log_probs)}

    def score(prefix):  # running sum of log p of the generated tokens of a prefix
        return 0.0 if len(prefix) == 1 else score(prefix[:-1]) + float(log_probs_of[prefix[:-1]][prefix[-1]])

    def until_end(row):  # a returned hypothesis without the padding after its end token
        return tuple(row[:row.index(eos_token_id, 1) + 1] if eos_token_id in row[1:] else row)

    hypotheses = [until_end(row) for row in returned.tolist()]
    nodes = set(log_probs_of) | {h[:i] for h in hypotheses for i in range(1, len(h) + 1)}
    has_child = {p[:-1] for p in nodes if len(p) > 1}
    height = {}  # y position: rank by running score among the nodes of the same depth
    for depth in range(1, max(map(len, nodes)) + 1):
        ranked = sorted((p for p in nodes if len(p) == depth), key=score, reverse=True)
        height.update({p: -rank for rank, p in enumerate(ranked)})

    depth, rows = max(map(len, nodes)), 1 - min(height.values())
    fig, ax = plt.subplots(figsize=(min(MAX_WIDTH, 1.0 + 0.75 * depth), 1.8 + 0.8 * rows), layout="constrained")
    for p in nodes:
        if len(p) > 1:
            ax.plot([len(p) - 2, len(p) - 1], [height[p[:-1]], height[p]], color="lightgray", zorder=1)
    widest = 2.0 + 2.0 * len(hypotheses)
    for i, h in enumerate(hypotheses):
        ending = "end token" if h[-1] == eos_token_id else "length limit"
        ax.plot(range(len(h)), [height[h[:j + 1]] for j in range(len(h))], color=f"C{i}", lw=widest - 2 * i,
                alpha=0.8, zorder=2, label=f"returned #{i + 1}: {len(h) - 1} tokens, Σ log p = {score(h):.1f} "
                                           f"(stopped by the {ending})")
    for p in nodes:
        pruned = p not in has_child and p not in hypotheses
        ax.text(len(p) - 1, height[p], f"{token_label(to_token(p[-1]))}\n{score(p):.1f}", fontsize=9, ha="center",
                va="center", color="gray" if pruned else "black", zorder=3,
                bbox=dict(boxstyle="round,pad=0.2", fc="white", ec="lightgray" if pruned else "black"))
    ax.set_xlabel("generated tokens")
    ax.set_yticks([])
    ax.set_xlim(-0.6, depth - 0.4)
    ax.set_ylim(0.5 - rows, 0.5)
    fig.legend(loc="outside lower center", fontsize=9, frameon=False)
    ax.set_title(f"Beam search with {len(steps[0][0])} beams: every live prefix (grey: pruned), "
                 "Σ log p under each token", fontsize=10)
    if save:
        save_figure(fig, save)
    return fig


# ------------------------------------------------------------------------------ other checkpoints (notebook 09)

def plot_roberta_positions(roberta_positions, type_vector, folded, pad_token_id: int, rows: int = 10, dims: int = 24,
                           save=None):
    """How a RoBERTa position table becomes BertGeneration's (roberta.py), as three heatmaps of the first `dims`
    dimensions: RoBERTa's table (rows 0..rows+offset-1, the offset = pad_token_id + 1 rows no real token reads
    greyed), its one token-type vector, and BertGeneration's table (rows 0..rows-1), each row drawn level with the
    RoBERTa row it came from: folded[i] = roberta_positions[i + offset] + type_vector. Tensors (P + offset, d), (d,)
    and (P, d). Returns the Figure."""
    offset = pad_token_id + 1
    table = roberta_positions[:rows + offset, :dims].detach().float().numpy()
    vector = type_vector[:dims].detach().float().numpy()[None]
    ours = folded[:rows, :dims].detach().float().numpy()
    limit = float(np.abs(np.concatenate([table.ravel(), ours.ravel()])).max())
    style = dict(cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(9.5, 4.2), layout="constrained",
                                              gridspec_kw=dict(width_ratios=[1, 1, 1]))
    left.imshow(table, extent=(-0.5, dims - 0.5, rows - 0.5, -offset - 0.5), **style)
    left.axhspan(-offset - 0.5, -0.5, color="0.85", alpha=0.85)
    left.text(dims / 2 - 0.5, -offset / 2 - 0.5, f"rows 0-{offset - 1}: padding_idx = {pad_token_id}\nand before it: "
              "never a real token's", ha="center", va="center", fontsize=9)
    left.set_yticks(range(-offset, rows), [str(r) for r in range(rows + offset)], fontsize=9)
    left.set(title="RoBERTa position_embeddings", ylabel="RoBERTa row (position + padding_idx + 1)")
    middle.imshow(vector, extent=(-0.5, dims - 0.5, 0.5, -0.5), **style)
    middle.set_ylim(rows - 0.5, -offset - 0.5)
    middle.set_yticks([0], ["type 0"], fontsize=9)
    middle.text(dims / 2 - 0.5, rows / 2, "+ token_type_embeddings[0]\n(RoBERTa adds it to every token;\n"
                "BertGeneration has no token types)", ha="center", va="center", fontsize=9)
    middle.set_title("its one token-type vector")
    image = right.imshow(ours, extent=(-0.5, dims - 0.5, rows - 0.5, -0.5), **style)
    right.set_ylim(rows - 0.5, -offset - 0.5)
    right.set_yticks(range(rows), [str(r) for r in range(rows)], fontsize=9)
    right.set(title="BertGeneration position_embeddings", ylabel="position of the token")
    for ax in (left, middle, right):
        ax.set_xlabel(f"first {dims} dimensions")
        ax.tick_params(labelsize=9)
    fig.colorbar(image, ax=right, shrink=0.8).ax.tick_params(labelsize=9)
    fig.suptitle(f"Loading RoBERTa: row i + {offset} of its table, plus its type vector, becomes position i",
                 fontsize=11)
    if save:
        save_figure(fig, save)
    return fig


# A block's residual branches, bottom to top: (LayerNorm before the sublayer, the sublayer, LayerNorm after the sum),
# each with the name the package's module gives it. BERT's layer normalises after each sum (post-LN), GPT-2's block
# before each sublayer (pre-LN), with one more LayerNorm, ln_f, after its last block.
POST_LN_BRANCHES = ((None, "self-attention\n(attention.self)", "LayerNorm\n(attention.output)"),
                    (None, "cross-attention\n(crossattention.self)", "LayerNorm\n(crossattention.output)"),
                    (None, "feed-forward\n(intermediate, output)", "LayerNorm\n(output.LayerNorm)"))
PRE_LN_BRANCHES = (("LayerNorm (ln_1)", "self-attention (attn)", None),
                   ("LayerNorm (ln_cross_attn)", "cross-attention\n(crossattention)", None),
                   ("LayerNorm (ln_2)", "feed-forward (mlp)", None))


def _draw_residual_column(ax, branches, title: str, final_norm=None) -> None:
    """One layer as a column: the residual stream going up at x=0 through a ⊕ per branch, each branch leaving it to
    the right, through its boxes, and back into the ⊕; a LayerNorm after the sum sits on the stream itself."""
    box = dict(boxstyle="round,pad=0.3", fc="white", ec="black")
    colours = {"LayerNorm": "#fde9c9", "attention": "#d6e6f5", "feed-forward": "#dcefd9"}

    def draw_box(x, y, text):
        kind = "LayerNorm" if text.startswith("LayerNorm") else "feed-forward" if "feed" in text else "attention"
        ax.text(x, y, text, ha="center", va="center", fontsize=9, bbox={**box, "fc": colours[kind]}, zorder=3)

    y = 0.0
    ax.text(0, -0.2, "x (from the layer below)", ha="center", va="top", fontsize=9)
    for before, sublayer, after in branches:
        top = y + (2.6 if before else 1.9)
        ax.plot([0, 0], [y, top], color="black", lw=2, zorder=1)            # the residual stream
        ax.plot([0, 1.4, 1.4], [y + 0.3, y + 0.3, top], color="0.4", zorder=1)  # the branch leaves it ...
        ax.annotate("", (0.15, top), (1.4, top), arrowprops=dict(arrowstyle="->", color="0.4"))  # ... and rejoins
        if before:
            draw_box(1.4, y + 0.9, before)
        draw_box(1.4, top - 0.8 if before else y + 1.05, sublayer)
        ax.text(0, top, "⊕", ha="center", va="center", fontsize=14, zorder=4,
                bbox=dict(boxstyle="circle,pad=0.05", fc="white", ec="white"))
        y = top
        if after:
            ax.plot([0, 0], [y, y + 0.9], color="black", lw=2, zorder=1)
            draw_box(0, y + 0.55, after)
            y += 0.9
    if final_norm:
        ax.plot([0, 0], [y, y + 1.0], color="black", lw=2, ls=":", zorder=1)
        draw_box(0, y + 0.6, final_norm)
        y += 1.0
    ax.annotate("to the layer above", (0, y + 0.25), ha="center", va="bottom", fontsize=9)
    ax.set(xlim=(-1.6, 2.9), ylim=(-0.8, y + 1.0), title=title)
    ax.axis("off")


def plot_post_ln_and_pre_ln(save=None):
    """A decoder layer of BERT (post-LN: x = LN(x + Sublayer(x)), the LayerNorm on the residual stream) beside a
    GPT-2 block (pre-LN: x = x + Sublayer(LN(x)), the stream never normalised until ln_f after the last block), each
    with cross-attention as the encoder-decoder adds it. Boxes carry the package's module names. Returns the
    Figure."""
    fig, (bert, gpt2) = plt.subplots(1, 2, figsize=(9, 6.5), layout="constrained")
    _draw_residual_column(bert, POST_LN_BRANCHES, "BERT layer (post-LN)\nx = LN(x + Sublayer(x))")
    _draw_residual_column(gpt2, PRE_LN_BRANCHES, "GPT-2 block (pre-LN)\nx = x + Sublayer(LN(x))",
                          final_norm="LayerNorm ln_f\n(after the last block only)")
    if save:
        save_figure(fig, save)
    return fig
