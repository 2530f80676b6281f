"""Static attention figures (matplotlib): heatmaps of one layer and head, a grid of all of them, one decoder step as
bars, and a per-layer summary of how sharp and how monotonic the attention is.

Every function takes an `AttentionCapture` (see attention_capture.py), returns the matplotlib Figure and, given
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
    return min(3.0 + 0.28 * cols, 16.0), min(2.2 + 0.28 * rows, 14.0)


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


def plot_attention_grid(capture: AttentionCapture, kind: str = "cross", save=None):
    """All layers (rows) x all heads (columns), plus a last column with the mean over heads, on one colour scale.
    Tokens are left off (see plot_attention for a labelled map). Returns the Figure."""
    maps = capture.maps(kind)
    L, nh = capture.num_layers, capture.num_heads
    vmax = max(float(m.max()) for m in maps)
    fig, axes = plt.subplots(L, nh + 1, figsize=(1.25 * (nh + 1) + 1.0, 1.25 * L + 0.9), squeeze=False,
                             layout="constrained")
    for layer in range(L):
        for col, head in enumerate(list(range(nh)) + ["mean"]):
            ax = axes[layer, col]
            image = ax.imshow(capture.select(kind, layer, head).numpy(), cmap=CMAP, vmin=0.0, vmax=vmax,
                              aspect="auto", interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if layer == 0:
                ax.set_title("mean" if head == "mean" else f"head {head}", fontsize=9)
            if col == 0:
                ax.set_ylabel(f"layer {layer}", fontsize=9)
    fig.colorbar(image, ax=axes, label="attention weight", shrink=0.8)
    row_name, col_name = axis_names(kind)
    fig.suptitle(f"{KIND_TITLES[kind]}, every layer and head (rows: {row_name}, columns: {col_name} tokens)\n"
                 f"{sentence_of(capture)}", fontsize=10)
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
    fig, (ax_ent, ax_mono) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
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
    fig.suptitle(f"{KIND_TITLES[kind]} per layer (dots: heads, line: their mean) · {sentence_of(first)}",
                 fontsize=10)
    if save:
        save_figure(fig, save)
    return fig
