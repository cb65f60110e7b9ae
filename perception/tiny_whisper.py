"""A tiny Whisper checkpoint built here, with nothing downloaded, for tests and the quickstart.

It has Whisper's real architecture, file layout and special tokens, so `WhisperRecognizer`
loads it exactly as it loads openai/whisper-small; only the sizes are small (d_model 64, two
encoder and two decoder layers) and the weights are random (timestamp tokens zeroed, so that
greedy decoding emits text tokens, not the timestamps `decode` would drop). Its tokenizer is our own: a
byte-level BPE trained on the simulated world's vocabulary and the taxonomy labels, wrapped
as a `WhisperTokenizer` with Whisper's special tokens in Whisper's order (start of transcript,
the languages, task tokens, no-timestamps, then the 1501 timestamp tokens), which is what
`generate` and the tokenizer's decoding rely on. Same seed, same files, in a few seconds.

    python -m bubblescope.perception.tiny_whisper OUT_DIR
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from bubblescope.taxonomy import load_taxonomy

BPE_VOCAB = 1000  # target size of the learned byte-level BPE (the small corpus may give fewer)
N_TIMESTAMPS = 1501  # <|0.00|> ... <|30.00|> in steps of 0.02 s, as in Whisper
MODEL_SIZES = {  # Whisper's shapes, scaled down: a forward pass of 30 s audio takes ~0.1 s
    "d_model": 64, "encoder_layers": 2, "decoder_layers": 2, "encoder_attention_heads": 4,
    "decoder_attention_heads": 4, "encoder_ffn_dim": 256, "decoder_ffn_dim": 256,
    "num_mel_bins": 80, "max_source_positions": 1500, "max_target_positions": 448,
}


def corpus() -> list[str]:
    """Our own text to learn the BPE from: the simulated vocabulary and the category labels."""
    text = resources.files("bubblescope.sim").joinpath("data/vocabulary.yaml").read_text("utf-8")
    vocabulary = yaml.safe_load(text)
    lines = [" ".join(vocabulary["filler"])]
    lines += [" ".join(words) for words in vocabulary["categories"].values()]
    taxonomy = load_taxonomy()
    lines += [label.replace("/", " ") for label in taxonomy.subs]
    lines.append("0 1 2 3 4 5 6 7 8 9 . , ! ? ' \" # - : ; ( )")
    return lines


def special_tokens() -> list[str]:
    """Whisper's special tokens after <|endoftext|>, in Whisper's order: the tokenizer finds a
    language token at <|startoftranscript|> + 1 + its index in LANGUAGES."""
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    return (["<|startoftranscript|>"] + [f"<|{code}|>" for code in LANGUAGES]
            + ["<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>",
               "<|nocaptions|>", "<|notimestamps|>"])


def build_tokenizer() -> Any:
    """A WhisperTokenizer over a BPE learned from `corpus()`, with Whisper's special tokens."""
    import json

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AddedToken, WhisperTokenizer

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=BPE_VOCAB, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(corpus(), trainer)
    learned = json.loads(bpe.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in learned["merges"]]
    tokenizer = WhisperTokenizer(vocab=dict(learned["vocab"]), merges=merges)  # + <|endoftext|>
    tokenizer.add_special_tokens({"additional_special_tokens": special_tokens()})
    tokenizer.add_tokens([AddedToken(f"<|{i * 0.02:.2f}|>", lstrip=False, rstrip=False,
                                     normalized=False, special=False)
                          for i in range(N_TIMESTAMPS)])
    return tokenizer


def generation_config(tokenizer: Any) -> Any:
    """What transformers' Whisper generate reads: prompt tokens, language and task ids."""
    from transformers import GenerationConfig
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    ids = tokenizer.convert_tokens_to_ids
    eot = tokenizer.eos_token_id
    return GenerationConfig(
        decoder_start_token_id=ids("<|startoftranscript|>"), bos_token_id=eot, eos_token_id=eot,
        pad_token_id=eot, max_length=MODEL_SIZES["max_target_positions"], is_multilingual=True,
        lang_to_id={f"<|{code}|>": ids(f"<|{code}|>") for code in LANGUAGES},
        task_to_id={"transcribe": ids("<|transcribe|>"), "translate": ids("<|translate|>")},
        no_timestamps_token_id=ids("<|notimestamps|>"), prev_sot_token_id=ids("<|startofprev|>"),
        begin_suppress_tokens=[ids("Ġ"), eot], suppress_tokens=[], max_initial_timestamp_index=50,
        return_timestamps=False)


def build_model(tokenizer: Any, seed: int) -> Any:
    """Whisper of the real architecture at MODEL_SIZES, randomly initialised from `seed`
    without touching torch's global random state."""
    import torch
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    eot = tokenizer.eos_token_id
    config = WhisperConfig(
        vocab_size=len(tokenizer), pad_token_id=eot, bos_token_id=eot, eos_token_id=eot,
        decoder_start_token_id=tokenizer.convert_tokens_to_ids("<|startoftranscript|>"),
        **MODEL_SIZES)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = WhisperForConditionalGeneration(config)
    # The output projection is tied to these embeddings: zero rows make every timestamp
    # token score 0, below the best text token, so greedy decoding says (random) words.
    first_timestamp = tokenizer.convert_tokens_to_ids("<|0.00|>")
    with torch.no_grad():
        model.get_input_embeddings().weight[first_timestamp:] = 0.0
    model.generation_config = generation_config(tokenizer)
    return model.eval()


def build_tiny_whisper(path: Path | str, seed: int = 0) -> Path:
    """Write a tiny Whisper checkpoint to `path` (created if needed) and return the folder."""
    from transformers import WhisperFeatureExtractor

    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    build_model(tokenizer, seed).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    WhisperFeatureExtractor(feature_size=MODEL_SIZES["num_mel_bins"]).save_pretrained(folder)
    return folder


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m bubblescope.perception.tiny_whisper OUT_DIR", file=sys.stderr)
        return 2
    print(build_tiny_whisper(argv[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
