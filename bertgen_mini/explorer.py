"""An interactive attention explorer for JupyterLab (ipywidgets): pick a sentence or type one, pick encoder, decoder
or cross attention, a layer and a head (or their mean), then step through the generated tokens and see which tokens
each one attends to.

The layout fits a 1366 x 768 laptop screen in JupyterLab, file browser open or not: three rows of controls and a
line naming where the current step looks, above one 1000 x 490 pixel image holding the heatmap (the current step
framed in red) and, beside it, that step's weights as bars; the image shrinks in a narrower notebook and is never
enlarged in a wider one (figures/explorer_1366x768*.png, made and measured by bench/explorer_screenshot.py). When a
map has more rows or columns than fit at a readable 9-point label size, only every k-th token is labelled (the
current step's always).

The view is drawn with matplotlib into a PNG (no pyplot state, so it works under any backend), shown in an
`ipywidgets.Image`. Where widgets cannot run (ipywidgets missing, nbval, GitHub's or another plain renderer) the
explorer displays the same view as a static image: its display bundle carries the PNG next to the widget.

References: bertviz's `head_view` (Vig 2019), for the idea; ipywidgets' documentation, for the widgets.
"""
import html
import io
import math

from matplotlib.figure import Figure

from .attention_capture import AttentionCapture, capture_attentions
from .viz import KIND_TITLES, head_name, plot_attention, plot_attention_step, token_label

try:
    import ipywidgets as widgets
except ImportError:  # the static view still works
    widgets = None

FIGURE_INCHES, DPI = (10.0, 4.9), 100  # 1000 x 490 pixels: with the controls, 640 of a 768-pixel-high screen
LABEL_PIXELS = 11  # a tick label needs this much room (9 points at 100 dpi is 12.5 pixels of line, ~9 of letters)
KIND_ORDER = ("cross", "encoder", "decoder")


class AttentionExplorer:
    """Browse AttentionCaptures. `captures`: one or a list; `capture_fn(text) -> AttentionCapture` (optional)
    captures a sentence the learner types. Display it in a notebook cell; `.widget` is the ipywidgets box (None
    without ipywidgets) and `.figure()` the current view as a matplotlib Figure."""

    def __init__(self, captures, capture_fn=None):
        self.captures = [captures] if isinstance(captures, AttentionCapture) else list(captures)
        if not self.captures:
            raise ValueError("Give the explorer at least one AttentionCapture (see capture_attentions).")
        self.capture_fn = capture_fn
        self.index, self.kind, self.head, self.step = 0, "cross", "mean", 0
        self.layer = self.capture.num_layers - 1  # the top layer: closest to the output
        self.widget = self.build_widget() if widgets is not None else None

    @property
    def capture(self) -> AttentionCapture:
        return self.captures[self.index]

    def rows(self) -> int:
        return len(self.capture.query_tokens(self.kind))

    # ------------------------------------------------------------------------------------------ the view

    def figure(self) -> Figure:
        """The current view: the chosen map with the current step framed (left), that step's weights as bars
        (right), on one FIGURE_INCHES figure whatever the sentence's length."""
        capture, kind = self.capture, self.kind
        fig = Figure(figsize=FIGURE_INCHES, dpi=DPI, layout="constrained")
        heat, bars = fig.subplots(1, 2, width_ratios=[1.25, 1])
        plot_attention(capture, kind, self.layer, self.head, ax=heat, highlight_row=self.step,
                       title=f"{KIND_TITLES[kind]} · layer {self.layer} · {head_name(capture, self.head)}")
        plot_attention_step(capture, self.step, kind, self.layer, self.head, ax=bars)
        query = token_label(capture.query_tokens(kind)[self.step])
        bars.set_title(f"row {self.step} ({query}): where it looks", fontsize=10)
        fig.draw_without_rendering()  # lay out first, to know how many pixels each token has
        thin_labels(heat, "y", keep=self.step)
        for ax in (heat, bars):
            thin_labels(ax, "x")
        return fig

    def png(self) -> bytes:
        buffer = io.BytesIO()
        self.figure().savefig(buffer, format="png", dpi=DPI)
        return buffer.getvalue()

    def describe_step(self, top: int = 3) -> str:
        """One line: the query token of the current step and the keys it attends to most."""
        weights = self.capture.select(self.kind, self.layer, self.head)[self.step]  # (K,)
        keys = self.capture.key_tokens(self.kind)
        best = weights.topk(min(top, len(keys)))
        looked_at = ", ".join(f"{token_label(keys[i])} {w:.2f}" for w, i in zip(best.values.tolist(),
                                                                                 best.indices.tolist()))
        query = token_label(self.capture.query_tokens(self.kind)[self.step])
        return f"{KIND_TITLES[self.kind]}: row {self.step} ({query}) attends most to {looked_at}"

    def _repr_mimebundle_(self, include=None, exclude=None):
        """The widget where a live kernel can show it, the PNG (and a text line) everywhere else."""
        bundle = self.widget._repr_mimebundle_() if self.widget is not None else {}
        return {**bundle, "text/plain": self.describe_step(), "image/png": self.png()}

    # ------------------------------------------------------------------------------------------ the widgets

    def build_widget(self):
        """Controls in three rows of at most 1000 pixels (sentence | own text; attention kind | head; layer |
        step), the message line, then the image, which shrinks with a narrower notebook instead of overflowing.
        Every control but the kind buttons has a 70-pixel description; the buttons are indented to line up."""
        capture, size = self.capture, lambda width: widgets.Layout(width=width)
        labels = {"description_width": "70px"}  # one width, so the controls' left edges line up
        self.sentence_box = widgets.Dropdown(options=self.sentence_options(), value=0, description="sentence",
                                             layout=size("560px"), style=labels)
        self.text_box = widgets.Text(placeholder="type a source sentence, then Enter", continuous_update=False,
                                     description="your own", disabled=self.capture_fn is None,
                                     layout=size("430px"), style=labels)
        self.kind_box = widgets.ToggleButtons(options=[(KIND_TITLES[k], k) for k in KIND_ORDER], value=self.kind,
                                              style={"button_width": "190px"},  # the longest label, whole
                                              layout=widgets.Layout(width="660px", margin="0 0 0 74px"))
        self.head_box = widgets.Dropdown(options=self.head_options(), value="mean", description="head",
                                         layout=size("200px"), style=labels)
        self.layer_box = widgets.IntSlider(value=self.layer, min=0, max=capture.num_layers - 1, description="layer",
                                           layout=size("330px"), style=labels)
        self.step_box = widgets.IntSlider(value=0, min=0, max=self.rows() - 1, description="step",
                                          layout=size("660px"), style=labels)
        self.message = widgets.HTML(html.escape(self.describe_step()))
        # Drawn at its own size, never enlarged: a wide notebook (file browser closed) would otherwise stretch it
        # to the cell's width and push its bottom off a 768-pixel screen; a narrow one shrinks it.
        self.image = widgets.Image(value=self.png(), format="png", layout=widgets.Layout(
            width=f"{FIGURE_INCHES[0] * DPI:.0f}px", max_width="100%", height="auto"))
        self.sentence_box.observe(self.on_sentence, "value")
        self.text_box.observe(self.on_text, "value")
        for box in (self.kind_box, self.layer_box, self.head_box, self.step_box):
            box.observe(self.on_setting, "value")
        rows = [(self.sentence_box, self.text_box), (self.kind_box, self.head_box), (self.layer_box, self.step_box)]
        return widgets.VBox([widgets.HBox(list(row)) for row in rows] + [self.message, self.image])

    def sentence_options(self) -> list:
        return [((c.sentence or " ".join(c.source_tokens))[:70], i) for i, c in enumerate(self.captures)]

    def head_options(self) -> list:
        return [("mean", "mean")] + [(str(h), h) for h in range(self.capture.num_heads)]

    def on_sentence(self, change):
        self.index = change["new"]
        self.layer_box.max, self.head_box.options = self.capture.num_layers - 1, self.head_options()
        self.on_setting()

    def on_text(self, change):
        text = change["new"].strip()
        if not text:
            return
        if self.capture_fn is None:
            self.message.value = ("<b>Typing a sentence needs a model:</b> open the explorer with "
                                  "explore_attention(model, tokenizer, sentences).")
            return
        try:
            self.captures.append(self.capture_fn(text))
        except Exception as err:  # shown to the learner in the widget, not lost in a callback's log
            self.message.value = f"<b>Could not capture that sentence:</b> {html.escape(str(err))}"
            return
        self.sentence_box.options = self.sentence_options()
        self.sentence_box.value = len(self.captures) - 1

    def on_setting(self, change=None):
        self.kind, self.layer, self.head = self.kind_box.value, self.layer_box.value, self.head_box.value
        self.step_box.max = self.rows() - 1  # the slider clamps its value to the new range
        self.step = self.step_box.value
        self.message.value = html.escape(self.describe_step())
        self.image.value = self.png()


def thin_labels(ax, axis: str, keep=None) -> None:
    """Show every k-th tick label of a laid-out axis (and always the one at `keep`), k the smallest step that leaves
    each shown label LABEL_PIXELS of room; every label when they all fit."""
    labels = ax.get_xticklabels() if axis == "x" else ax.get_yticklabels()
    box = ax.get_window_extent()
    room = (box.width if axis == "x" else box.height) / max(1, len(labels))  # pixels per token
    every = max(1, math.ceil(LABEL_PIXELS / room))
    for i, label in enumerate(labels):
        label.set_visible(i % every == 0 or i == keep)


def explore_attention(model, tokenizer, sources, targets=None, max_new_tokens=64) -> AttentionExplorer:
    """An explorer over the model's attention on `sources` (list of str), teacher-forced on `targets` when given,
    generated otherwise; sentences typed into it are generated (or, without generate, refused with a message)."""
    captures = capture_attentions(model, tokenizer, list(sources), None if targets is None else list(targets),
                                  max_new_tokens=max_new_tokens)
    return AttentionExplorer(captures, lambda text: capture_attentions(model, tokenizer, text,
                                                                       max_new_tokens=max_new_tokens))
