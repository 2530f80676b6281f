"""Small random stand-ins for the RoBERTa and GPT-2 checkpoints, built offline: a byte-level BPE trained on your own
texts, and a GPT-2 and a RoBERTa over it, each saved in the layout of the real checkpoint (config.json,
model.safetensors, vocab.json, merges.txt), so every recipe can be tried on a laptop without a download and with
the same code that reads `openai-community/gpt2` or `FacebookAI/roberta-base`.

Their weights are random: they show what the recipes build, and how the pipeline runs, not what pretraining buys.

- `train_byte_level_bpe`: the merges are learned by the `tokenizers` library (Hugging Face's Rust tokenizers, which
  transformers installs): start from the 256 bytes, count adjacent pairs over the corpus's words, merge the most
  frequent pair into a new token, repeat until the vocabulary is full (Sennrich et al. 2016, over bytes as GPT-2 does).
  bertgen_mini's GPT2Tokenizer and RobertaTokenizer read the files it writes.
- `random_gpt2`: GPT2LMHeadModel at random (transformers' initialisation), over a BPE folder.
- `random_roberta`: a RoBERTa checkpoint at random: BERT's tensors under BERT's names, with RoBERTa's two
  differences (roberta.py): a position table padding_idx + 1 rows longer, and one token-type vector.
"""
import shutil
from pathlib import Path

import torch

from .checkpoint import read_json, save_checkpoint
from .config import BertGenerationConfig
from .gpt2 import GPT2Config, GPT2LMHeadModel
from .model import BertGenerationEncoder
from .roberta import position_offset
from .tokenizer_bpe import MERGES_FILE, ByteLevelBPETokenizer

VOCAB_FILE = ByteLevelBPETokenizer.vocab_file_name
GPT2_SPECIALS = ("<|endoftext|>",)                             # GPT-2's one special token
# RoBERTa's, which the trainer puts at ids 0-4: roberta-base has the first four there, and <mask> last (50264)
ROBERTA_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")


def train_byte_level_bpe(texts, folder, vocab_size: int = 2000, special_tokens=GPT2_SPECIALS,
                         min_frequency: int = 2) -> Path:
    """Learn a byte-level BPE of `vocab_size` tokens (special tokens first, then the 256 bytes, then the merges) on
    `texts` (strings) and write vocab.json and merges.txt into `folder`, which is returned. min_frequency: a pair seen
    fewer times is never merged. Needs the `tokenizers` package."""
    try:
        from tokenizers import ByteLevelBPETokenizer as Trainer
    except ImportError:
        raise ImportError("Training a byte-level BPE needs the `tokenizers` package (it comes with transformers): "
                          "pip install tokenizers") from None
    if vocab_size < 256 + len(special_tokens):
        raise ValueError(f"vocab_size={vocab_size} is too small: the {len(special_tokens)} special tokens and the 256 "
                         "bytes come first, and the merges after them.")
    trainer = Trainer()
    trainer.train_from_iterator(list(texts), vocab_size=vocab_size, min_frequency=min_frequency,
                                special_tokens=list(special_tokens), show_progress=False)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    trainer.save_model(str(folder))
    return folder


def bpe_vocabulary(bpe_dir) -> dict:
    """{token: id} of a BPE folder's vocab.json."""
    return read_json(Path(bpe_dir) / VOCAB_FILE)


def copy_bpe(bpe_dir, folder) -> None:
    """vocab.json and merges.txt of `bpe_dir` into `folder`, as a checkpoint folder holds its tokenizer."""
    for name in (VOCAB_FILE, MERGES_FILE):
        shutil.copy(Path(bpe_dir) / name, Path(folder) / name)


def random_gpt2(folder, bpe_dir, n_embd: int = 64, n_layer: int = 2, n_head: int = 4, n_positions: int = 128,
                seed: int = 0) -> Path:
    """A GPT-2 checkpoint at random over the BPE in `bpe_dir` (which must hold <|endoftext|>, its start, end and
    padding token), saved with the BPE's files in `folder`, which is returned. Sizes in GPT2Config's names."""
    vocabulary = bpe_vocabulary(bpe_dir)
    if "<|endoftext|>" not in vocabulary:
        raise ValueError(f"{bpe_dir} has no <|endoftext|>: train the BPE with it among its special_tokens.")
    end = vocabulary["<|endoftext|>"]
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=len(vocabulary), n_positions=n_positions, n_embd=n_embd, n_layer=n_layer,
                        n_head=n_head, bos_token_id=end, eos_token_id=end)
    GPT2LMHeadModel(config).save_pretrained(folder)
    copy_bpe(bpe_dir, folder)
    return Path(folder)


def random_roberta(folder, bpe_dir, hidden_size: int = 64, num_hidden_layers: int = 2, num_attention_heads: int = 4,
                   intermediate_size: int = 128, max_positions: int = 128, seed: int = 0) -> Path:
    """A RoBERTa checkpoint (RobertaModel's names, model_type "roberta") at random over the BPE in `bpe_dir` (which
    must hold RoBERTa's special tokens, <pad> being padding_idx), saved with the BPE's files in `folder`, which is
    returned. `max_positions` real positions: the table has padding_idx + 1 rows more, as roberta-base's 514 = 512 + 2.
    """
    vocabulary = bpe_vocabulary(bpe_dir)
    missing = [token for token in ROBERTA_SPECIALS if token not in vocabulary]
    if missing:
        raise ValueError(f"{bpe_dir} lacks RoBERTa's {missing}: train the BPE with ROBERTA_SPECIALS first.")
    pad = vocabulary["<pad>"]
    torch.manual_seed(seed)
    config = BertGenerationConfig(vocab_size=len(vocabulary), hidden_size=hidden_size,
                                  num_hidden_layers=num_hidden_layers, num_attention_heads=num_attention_heads,
                                  intermediate_size=intermediate_size, layer_norm_eps=1e-5, pad_token_id=pad,
                                  max_position_embeddings=max_positions + position_offset(pad),
                                  bos_token_id=vocabulary["<s>"], eos_token_id=vocabulary["</s>"])
    tensors = BertGenerationEncoder(config).state_dict()
    tensors["embeddings.token_type_embeddings.weight"] = torch.randn(1, hidden_size) * config.initializer_range
    values = {**config.to_dict(), "model_type": "roberta", "type_vocab_size": 1}
    save_checkpoint(folder, values, {name: tensor.contiguous() for name, tensor in tensors.items()})
    copy_bpe(bpe_dir, folder)
    return Path(folder)
