"""Checks for notebook 02 (model anatomy)."""
import torch

from . import check, check_prediction, check_written, require


def tiny_config(**overrides):
    from ..config import BertGenerationConfig

    sizes = dict(vocab_size=100, hidden_size=16, num_hidden_layers=2, num_attention_heads=4, intermediate_size=32,
                 max_position_embeddings=32, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return BertGenerationConfig(**{**sizes, **overrides})


def check_attention_by_hand(attention_by_hand) -> bool:
    """02.1: attention_by_hand(q, k, v, mask) -> (context (B, nh, T, dh), probs (B, nh, T, S)), checked against the
    package's Attention with and without the causal mask."""
    from ..attention import Attention
    from ..model import causal_mask

    def test():
        torch.manual_seed(0)
        config = tiny_config()
        attention = Attention(config).eval()
        x = torch.randn(2, 5, config.hidden_size)                               # (B, T, d)
        heads = attention.self
        split = lambda t: t.view(2, 5, config.num_attention_heads, config.head_size).transpose(1, 2)  # (B, nh, T, dh)
        q, k, v = split(heads.query(x)), split(heads.key(x)), split(heads.value(x))
        for mask in (None, causal_mask(None, 5, 0, torch.float32, "cpu")):
            with torch.no_grad():
                out, probs = attention(x, mask, output_attentions=True)
                result = attention_by_hand(q, k, v, mask)
            require(isinstance(result, tuple) and len(result) == 2, "return a pair: (context, probabilities)")
            context, my_probs = result
            where = "without a mask" if mask is None else "with the causal mask"
            require(torch.is_tensor(my_probs) and tuple(my_probs.shape) == tuple(probs.shape),
                    f"{where}: probabilities should have shape (B, nh, T, S) = {tuple(probs.shape)}, got "
                    f"{tuple(getattr(my_probs, 'shape', ()))}")
            require(torch.allclose(my_probs, probs, atol=1e-5),
                    f"{where}: your probabilities differ from the package's by up to "
                    f"{(my_probs - probs).abs().max():.3g}. Divide the scores by sqrt(d_h) (the head size), add the "
                    "mask, then softmax over the last dimension.")
            require(torch.is_tensor(context) and context.shape == q.shape,
                    f"{where}: the context should have the queries' shape (B, nh, T, dh) = {tuple(q.shape)}")
            mixed = context.transpose(1, 2).reshape(2, 5, config.hidden_size)
            mine = attention.output.LayerNorm(attention.output.dense(mixed) + x)
            require(torch.allclose(mine, out, atol=1e-5), f"{where}: the context should be probs @ v, (B, nh, T, dh)")
        return "(probabilities and output, with and without the causal mask)"
    return check("02.1", test, attention_by_hand)


def check_cross_shape_prediction(predicted_shape) -> bool:
    """02.2: the shape of a decoder layer's cross-attention probabilities for B=1, T=5 target and S=7 source tokens
    with 4 heads."""
    from ..model import Layer, causal_mask

    def cross_shape():
        layer = Layer(tiny_config(is_decoder=True, add_cross_attention=True), layer_idx=0).eval()
        with torch.no_grad():
            _, _, cross = layer(torch.randn(1, 5, 16), causal_mask(None, 5, 0, torch.float32, "cpu"),
                                encoder_states=torch.randn(1, 7, 16), output_attentions=True)
        return tuple(cross.shape)

    def hint(guess, truth):
        if isinstance(guess, tuple) and sorted(guess) == sorted(truth):
            return "The right numbers in another order: (B, nh, T, S), a (T, S) map per head and sentence."
        if isinstance(guess, tuple) and guess[-1:] == (5,):
            return "The keys come from the source, not the target: the last dimension counts source tokens."
        return None

    guess = tuple(predicted_shape) if isinstance(predicted_shape, (list, tuple)) else predicted_shape
    return check_prediction("02.2", guess, cross_shape, "One row per target token (the queries), one column "
                            "per source token (the keys), for every head of every sentence: (B, nh, T, S).", hint=hint)


def check_decoder_layer_params(decoder_layer_params) -> bool:
    """02.3: decoder_layer_params(d, f), the parameter count of one decoder layer, for two sizes."""
    from ..model import Layer

    def test():
        for d, f in ((16, 32), (24, 40)):
            config = tiny_config(hidden_size=d, intermediate_size=f, is_decoder=True, add_cross_attention=True)
            layer = Layer(config, layer_idx=0)
            expected = sum(p.numel() for p in layer.parameters())
            got = decoder_layer_params(d, f)
            one_attention = sum(p.numel() for p in layer.attention.parameters())
            if got == expected - one_attention:
                hint = "You counted one attention block: a decoder layer has two, self-attention and cross-attention."
            elif got == expected - (9 * d + f):
                hint = "Count the biases too: a Linear(a, b) has a*b + b parameters."
            elif got == expected - 3 * 2 * d:
                hint = "Count the three LayerNorms too (one after each block), each 2d: a gain and a bias."
            else:
                hint = "Did you count both attention blocks (self and cross) and every bias and LayerNorm?"
            require(got == expected, f"with d={d}, f={f} your formula gives {got!r} but a decoder layer has "
                                     f"{expected:,} parameters. {hint}")
        return "(checked with two sizes)"
    return check("02.3", test, decoder_layer_params)


def check_tying_answer(answer) -> bool:
    """02.4 (written): what weight tying saves."""
    return check_written("02.4", answer, [
        "The LM head needs a V x d matrix (a score for every vocabulary entry from a d-wide vector): exactly the "
        "shape of the word embeddings, so one matrix reads tokens in and scores them out.",
        "Tied, the head adds only its bias (V = 30,522 numbers).",
        "Untied, MiniLM's decoder would gain 30,522 x 384 = 11.7 M parameters, more than its six feed-forward "
        "blocks (7.1 M), and the checkpoint gives no value for them."])


EXERCISES = {"02.1": (check_attention_by_hand, "attention_by_hand", "function"),
             "02.2": (check_cross_shape_prediction, "predicted_shape", "value"),
             "02.3": (check_decoder_layer_params, "decoder_layer_params", "function"),
             "02.4": (check_tying_answer, "tying_answer", "written")}
