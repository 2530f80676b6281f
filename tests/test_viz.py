"""Attention capture, the static figures and the explorer: probabilities that sum to one with padding cut away,
shapes that match the tokens shown, a figure from every plot function, and a widget that builds without a display."""
import io

import matplotlib

matplotlib.use("Agg")  # no display in tests
import matplotlib.pyplot as plt
import pytest
import torch
from reference import small_pair

import bertgen_mini as bg
from bertgen_mini import viz
from bertgen_mini.attention_capture import (alignment_monotonicity, attention_entropy, attention_stats,
                                            capture_attentions, capture_from_ids, captures_from_outputs)
from bertgen_mini.explorer import AttentionExplorer, explore_attention

# Two sources, the second padded; two targets (start token 2 first, end token 1), the second padded with 0.
SOURCES = torch.tensor([[2, 5, 6, 7, 8, 3], [2, 9, 10, 3, 0, 0]])
MASK = (SOURCES != 0).long()
SEQUENCES = torch.tensor([[2, 11, 12, 13, 1], [2, 14, 1, 0, 0]])
FAKE_VOCAB = {2: "[CLS]", 3: "[SEP]", 1: "[EOS]", 6: "##ing", 12: "##ed"}


def fake_tokens(ids):
    return [FAKE_VOCAB.get(i, f"w{i}") for i in ids]


@pytest.fixture(scope="module")
def captures():
    return capture_from_ids(small_pair(), SOURCES, MASK, SEQUENCES, fake_tokens, ["first sentence", "second"])


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_rows_sum_to_one_over_real_source_tokens(captures):
    for capture in captures:
        for kind in ("encoder", "decoder", "cross"):
            for probs in capture.maps(kind):
                torch.testing.assert_close(probs.sum(-1), torch.ones(probs.shape[:-1]))


def test_shapes_match_the_tokens_shown(captures):
    short = captures[1]
    assert short.source_tokens == ["[CLS]", "w9", "w10", "[SEP]"]  # padding cut away
    assert short.decoder_tokens == ["[CLS]", "w14"] and short.target_tokens == ["w14", "[EOS]"]
    for capture in captures:
        S, T = len(capture.source_tokens), len(capture.target_tokens)
        assert len(capture.decoder_tokens) == T
        assert [tuple(a.shape) for a in capture.encoder] == [(4, S, S)] * 2
        assert [tuple(a.shape) for a in capture.decoder] == [(4, T, T)] * 2
        assert [tuple(a.shape) for a in capture.cross] == [(4, T, S)] * 2
        for kind in ("encoder", "decoder", "cross"):
            rows, cols = capture.select(kind, -1, "mean").shape
            assert (rows, cols) == (len(capture.query_tokens(kind)), len(capture.key_tokens(kind)))


def test_padding_does_not_change_the_maps(captures):
    alone = capture_from_ids(small_pair(), SOURCES[1:, :4], None, SEQUENCES[1:, :3], fake_tokens)[0]
    for kind in ("encoder", "decoder", "cross"):
        for padded, unpadded in zip(captures[1].maps(kind), alone.maps(kind)):
            torch.testing.assert_close(padded, unpadded, atol=1e-5, rtol=1e-5)


def test_decoder_self_attention_never_looks_ahead(captures):
    for probs in captures[0].decoder:
        assert probs.triu(diagonal=1).abs().max() == 0


def test_shared_weights_model_is_captured():
    model = small_pair()
    shared = bg.EncoderDecoderModel(encoder=model.encoder, decoder=model.decoder, tie_encoder_decoder=True)
    shared.config.decoder_start_token_id, shared.config.eos_token_id, shared.config.pad_token_id = 2, 1, 0
    capture = capture_from_ids(shared.eval(), SOURCES[:1], None, SEQUENCES[:1], fake_tokens)[0]
    assert capture.num_layers == 2 and capture.cross[0].shape == (4, 4, 6)


def test_capture_leaves_training_mode_as_it_was():
    model = small_pair().train()
    first, second = (capture_from_ids(model, SOURCES, MASK, SEQUENCES)[0] for _ in range(2))
    assert model.training
    torch.testing.assert_close(first.cross[0], second.cross[0])  # dropout was off while capturing


def test_out_of_range_layer_head_and_kind_are_refused(captures):
    with pytest.raises(IndexError, match="layer 2 is out of range: this model has 2 layers"):
        captures[0].select("cross", 2)
    with pytest.raises(IndexError, match="head 4 is out of range"):
        captures[0].select("cross", 0, 4)
    with pytest.raises(IndexError, match="head 'max'"):
        viz.plot_attention(captures[0], head="max")
    with pytest.raises(ValueError, match="kind='self'"):
        captures[0].maps("self")
    with pytest.raises(IndexError, match="step 9 is out of range"):
        viz.plot_attention_step(captures[0], 9)


def test_outputs_without_attentions_are_refused():
    model = small_pair()
    outputs = model(input_ids=SOURCES, attention_mask=MASK, decoder_input_ids=SEQUENCES[:, :-1])
    with pytest.raises(ValueError, match="output_attentions=True"):
        captures_from_outputs(outputs, SOURCES, MASK, SEQUENCES)


def test_bertviz_format_has_batch_axis_and_matching_token_counts(captures):
    view = captures[0].to_bertviz()
    S, T = len(view["encoder_tokens"]), len(view["decoder_tokens"])
    assert [a.shape for a in view["encoder_attention"]] == [(1, 4, S, S)] * 2
    assert [a.shape for a in view["decoder_attention"]] == [(1, 4, T, T)] * 2
    assert [a.shape for a in view["cross_attention"]] == [(1, 4, T, S)] * 2


def test_entropy_and_monotonicity_on_known_maps():
    diagonal, uniform = torch.eye(5), torch.full((5, 5), 0.2)
    assert attention_entropy(diagonal) == 0
    assert attention_entropy(uniform).item() == pytest.approx(torch.log2(torch.tensor(5.0)).item())
    assert alignment_monotonicity(diagonal) == pytest.approx(1.0)
    assert alignment_monotonicity(diagonal.flip(0)) == pytest.approx(-1.0)
    assert alignment_monotonicity(torch.eye(5)[[4] * 5]) == 0  # always the same key: no alignment at all


def test_stats_are_per_layer_and_head(captures):
    stats = attention_stats(captures[0], "cross")
    assert stats["entropy"].shape == stats["monotonicity"].shape == (2, 4)
    assert (stats["entropy"] <= stats["uniform_entropy"] + 1e-4).all()


def test_every_plot_function_returns_a_figure_and_saves(captures, tmp_path):
    capture = captures[0]
    figures = {
        "cross": viz.plot_attention(capture, "cross", 0, 1, save=tmp_path / "cross.png"),
        "encoder": viz.plot_attention(capture, "encoder", -1, "mean", save=tmp_path / "encoder.png"),
        "decoder": viz.plot_attention(capture, "decoder", save=tmp_path / "decoder.png"),
        "grid": viz.plot_attention_grid(capture, save=tmp_path / "grid.png"),
        "step": viz.plot_attention_step(capture, 2, save=tmp_path / "step.png"),
        "summary": viz.plot_attention_summary({"a": capture, "b": captures[1]}, save=tmp_path / "summary.png"),
    }
    for name, fig in figures.items():
        assert isinstance(fig, matplotlib.figure.Figure), name
        assert (tmp_path / f"{name}.png").stat().st_size > 1000, name
    assert "layer 0 · head 1" in figures["cross"].axes[0].get_title()
    assert "“first sentence”" in figures["cross"].axes[0].get_title()


def test_grid_pages_and_beam_tree_fit_a_laptop_screen(captures, tmp_path):
    from bertgen_mini.beam_search import beam_search
    from bertgen_mini.generation import DecoderRunner, GenerationSettings

    page = viz.plot_attention_grid(captures[0], layers=[1])
    assert len(page.axes) == captures[0].num_heads + 2 and page.get_size_inches()[0] <= viz.MAX_WIDTH  # + mean, bar

    class Recording(DecoderRunner):
        steps = []

        def next_logits(self, sequences):
            logits = super().next_logits(sequences)
            self.steps.append((sequences.clone(), logits.log_softmax(-1)))
            return logits

    model = small_pair()
    settings = GenerationSettings(num_beams=3, max_new_tokens=6, num_return_sequences=3, eos_token_id=1,
                                  pad_token_id=0)
    with torch.inference_mode():
        runner = Recording(model.decoder, model.encoder(SOURCES[:1]).last_hidden_state, MASK[:1], copies=3)
        finished, _, _ = beam_search(runner, torch.full((1, 1), 2), settings)
    fig = viz.plot_beam_tree(runner.steps, finished, 1, lambda i: f"w{i}", save=tmp_path / "tree.png")
    assert fig.get_size_inches()[0] <= viz.MAX_WIDTH and (tmp_path / "tree.png").stat().st_size > 1000
    assert len(fig.legends[0].get_texts()) == 3


def test_tick_labels_mark_word_pieces_and_special_tokens(captures):
    fig = viz.plot_attention(captures[0])
    colours = {t.get_text(): t.get_color() for t in fig.axes[0].get_xticklabels()}
    assert colours["##ing"] == viz.TOKEN_COLOURS["continuation"]
    assert colours["[CLS]"] == viz.TOKEN_COLOURS["special"] and colours["w5"] == viz.TOKEN_COLOURS["word"]
    assert viz.token_kind("ing", sentencepiece=True) == "continuation"
    assert viz.token_kind("▁the", sentencepiece=True) == "word"


def test_explorer_builds_without_a_display_and_follows_its_controls(captures):
    explorer = AttentionExplorer(captures)
    assert explorer.widget is not None and bytes(explorer.image.value).startswith(b"\x89PNG")
    explorer.step_box.value = 3
    assert "row 3 ([EOS])" in explorer.message.value
    explorer.sentence_box.value = 1  # a shorter target: the step slider shrinks with it
    assert explorer.step_box.max == 1 and explorer.step == 1
    explorer.kind_box.value, explorer.layer_box.value, explorer.head_box.value = "encoder", 0, 2
    assert explorer.step_box.max == 3 and "encoder self-attention" in explorer.message.value
    bundle = explorer._repr_mimebundle_()
    assert bundle["image/png"].startswith(b"\x89PNG")  # the static fallback for plain renderers
    assert "application/vnd.jupyter.widget-view+json" in bundle
    explorer.text_box.value = "a typed sentence"
    assert "needs a model" in explorer.message.value


def test_explorer_view_keeps_its_size_and_thins_labels_that_would_overlap():
    long = torch.arange(3, 63).unsqueeze(0)  # 60 source and 60 target tokens: more than 490 pixels can label
    capture = capture_from_ids(small_pair(), long, None, long)[0]
    explorer = AttentionExplorer(capture)
    explorer.step_box.value = 7
    image = plt.imread(io.BytesIO(explorer.png()), format="png")
    assert image.shape[:2] == (490, 1000)  # (height, width) in pixels, whatever the length
    heat = explorer.figure().axes[0]
    shown = [tick.label1.get_visible() for tick in heat.yaxis.get_major_ticks()]
    assert len(shown) == 59 and 10 < sum(shown) < 59 and shown[7]  # every k-th row, and the current step's
    short = AttentionExplorer(capture_from_ids(small_pair(), SOURCES, MASK, SEQUENCES, fake_tokens)[0])
    assert all(tick.label1.get_visible() for tick in short.figure().axes[0].yaxis.get_major_ticks())


def test_explorer_buttons_carry_the_full_kind_names(captures):
    explorer = AttentionExplorer(captures)
    assert [label for label, _ in explorer.kind_box.options] == [
        "cross-attention", "encoder self-attention", "decoder self-attention"]
    assert explorer.kind_box.style.button_width == "190px"  # wide enough for the longest, measured in Chromium


def test_real_minilm_pair_with_wordpiece_tokens(minilm_dir):
    from bertgen_mini.tokenizer_wordpiece import BertTokenizer
    model = bg.EncoderDecoderModel.from_encoder_decoder_pretrained(minilm_dir, minilm_dir, verbose=False).eval()
    tokenizer = BertTokenizer.from_pretrained(minilm_dir)
    model.config.decoder_start_token_id, model.config.eos_token_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    model.config.pad_token_id = tokenizer.pad_token_id
    sources = ["Unbelievably, the tokenizer works and it is fast.", "It rains."]
    targets = ["Unbelievably, the tokenizer works. It is fast.", "It rains."]
    explorer = explore_attention(model, tokenizer, sources, targets)
    first, second = explorer.captures
    assert "##bel" in first.source_tokens and first.target_tokens[-1] == "[SEP]"
    assert second.source_tokens == ["[CLS]", "it", "rains", ".", "[SEP]"]
    assert second.decoder_tokens == ["[CLS]", "it", "rains", "."]
    assert first.num_layers == 6 and first.num_heads == 12
    for capture in (first, second):
        for probs in capture.cross:
            assert probs.shape == (12, len(capture.target_tokens), len(capture.source_tokens))
            torch.testing.assert_close(probs.sum(-1), torch.ones(probs.shape[:-1]))
    if hasattr(model, "generate"):  # no target: the model writes one first
        generated = capture_attentions(model, tokenizer, "It rains.", max_new_tokens=4)
        assert len(generated.target_tokens) <= 4 and generated.decoder_tokens[0] == "[CLS]"
        assert generated.cross[0].shape == (12, len(generated.target_tokens), 5)


def test_teacher_forced_capture_equals_cached_step_by_step_decoding():
    model = small_pair()
    capture = capture_from_ids(model, SOURCES[:1], None, SEQUENCES[:1])[0]
    with torch.no_grad():
        states = model.encoder(SOURCES[:1]).last_hidden_state
        cache, steps = bg.KVCache(2), []
        for t in range(SEQUENCES.shape[1] - 1):  # one token a step, keys and values from the cache
            steps.append(model.decoder(SEQUENCES[:1, t:t + 1], encoder_hidden_states=states, past_key_values=cache,
                                       use_cache=True, output_attentions=True))
    T = len(steps)
    for layer in range(2):
        cross = torch.cat([out.cross_attentions[layer][0] for out in steps], dim=1)  # (nh, T, S)
        torch.testing.assert_close(cross, capture.cross[layer], atol=1e-5, rtol=1e-5)
        for t, out in enumerate(steps):  # step t's self-attention row sees positions 0..t
            torch.testing.assert_close(out.attentions[layer][0, :, 0], capture.decoder[layer][:, t, :t + 1],
                                       atol=1e-5, rtol=1e-5)
    assert T == len(capture.target_tokens)


def test_capture_of_generated_sequences_matches_generate():
    model = small_pair()
    if not hasattr(model, "generate"):
        pytest.skip("EncoderDecoderModel.generate has not landed yet")
    out = model.generate(SOURCES, MASK, max_new_tokens=5, return_dict_in_generate=True, output_attentions=True)
    captures = capture_from_ids(model, SOURCES, MASK, out.sequences)
    for b, capture in enumerate(captures):
        T = len(capture.target_tokens)
        assert capture.decoder_tokens[0] == "2"  # the start token
        for generated, captured in zip(out.cross_attentions, capture.cross):  # per layer (B, nh, T, S)
            torch.testing.assert_close(generated[b, :, :T][:, :, MASK[b].bool()], captured, atol=1e-5, rtol=1e-5)
