"""bertgen_mini: BertGeneration (Rothe, Narayan & Severyn, TACL 2020) in plain PyTorch, to read and to run.

The model (with GPT-2 as a second kind of decoder), its tokenizers and attention capture are importable from here.
Heavier parts stay submodules, so `import bertgen_mini` loads neither matplotlib nor sacrebleu: `bertgen_mini.viz`,
`.explorer`, `.data`, `.metrics`, `.recipes`, `.train`, `.evaluate`, `.zoo`.
"""
from .attention_capture import AttentionCapture, capture_attentions
from .auto import AutoTokenizer
from .config import BertGenerationConfig
from .encoder_decoder import EncoderDecoderConfig, EncoderDecoderModel, shift_tokens_right
from .gpt2 import GPT2Config, GPT2LMHeadModel
from .kv_cache import KVCache
from .model import BertGenerationDecoder, BertGenerationEncoder
from .paths import default_bert_dir
from .tokenizer_base import BatchEncoding
from .tokenizer_bpe import GPT2Tokenizer, RobertaTokenizer
from .tokenizer_sentencepiece import BertGenerationTokenizer
from .tokenizer_wordpiece import BertTokenizer

__all__ = [
    "BertGenerationConfig", "BertGenerationEncoder", "BertGenerationDecoder", "EncoderDecoderConfig",
    "EncoderDecoderModel", "GPT2Config", "GPT2LMHeadModel", "KVCache", "shift_tokens_right", "default_bert_dir",
    "BertGenerationTokenizer", "BertTokenizer", "GPT2Tokenizer", "RobertaTokenizer", "AutoTokenizer", "BatchEncoding",
    "AttentionCapture", "capture_attentions",
]
