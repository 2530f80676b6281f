"""bertgen_mini: BertGeneration (Rothe, Narayan & Severyn, TACL 2020) in plain PyTorch, to read and to run."""
from .attention import KVCache
from .config import BertGenerationConfig
from .encoder_decoder import EncoderDecoderConfig, EncoderDecoderModel, shift_tokens_right
from .model import BertGenerationDecoder, BertGenerationEncoder
from .paths import default_bert_dir

__all__ = [
    "BertGenerationConfig", "BertGenerationEncoder", "BertGenerationDecoder", "EncoderDecoderConfig",
    "EncoderDecoderModel", "KVCache", "shift_tokens_right", "default_bert_dir",
]
