"""A ViT-B/32 CLIP model directory for the benchmarks, made once and cached under var/bench/vitb32/.

`CLIPModel(CLIPConfig())` is the ViT-B/32 architecture (openai/clip-vit-base-patch32 shapes) with
random weights (torch.manual_seed(0)): it computes exactly what the real model computes, only the
numbers in the weights differ, so timings and precision effects carry over.
The image processor has the openai defaults; the tokenizer is the REAL CLIP BPE vocabulary, read
from open_clip's `bpe_simple_vocab_16e6.txt.gz` inside the open-clip-torch wheel (downloaded with
`pip download --no-deps`, never installed) and converted the way Hugging Face's CLIP conversion does.

    .venv/bin/python bench/vitb32.py        # prints the directory (builds it on first use)
"""
from __future__ import annotations

import gzip
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

# transformers' own byte table (the one CLIP's tokenizer uses) and the CLIP normalisation constants.
from transformers.convert_slow_tokenizer import bytes_to_unicode
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

MODEL_DIR = common.BENCH_DIR / "vitb32"
BPE_MEMBER = "open_clip/bpe_simple_vocab_16e6.txt.gz"
VOCAB_SIZE = 49408


def _bpe_text() -> str:
    """The open_clip BPE merges file, from the open-clip-torch wheel (downloaded, not installed)."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", tmp, "open-clip-torch"],
                       check=True)
        wheel = next(Path(tmp).glob("open_clip_torch-*.whl"))
        with zipfile.ZipFile(wheel) as z:
            return gzip.decompress(z.read(BPE_MEMBER)).decode("utf-8")


def clip_vocab_and_merges(bpe_text: str) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Exactly as CLIP's SimpleTokenizer / HF's conversion: 256 byte chars, their </w> forms,
    one entry per merge, then the two special tokens."""
    lines = bpe_text.split("\n")
    merges = [tuple(m.split()) for m in lines[1:49152 - 256 - 2 + 1]]
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab += ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    return {tok: i for i, tok in enumerate(vocab)}, merges


def build(model_dir: Path = MODEL_DIR) -> Path:
    import torch
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel, CLIPTokenizer

    model_dir.mkdir(parents=True, exist_ok=True)
    vocab, merges = clip_vocab_and_merges(_bpe_text())
    if len(vocab) != VOCAB_SIZE:
        raise RuntimeError(f"CLIP vocabulary has {len(vocab)} tokens, expected {VOCAB_SIZE}")
    (model_dir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (model_dir / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
    tok = CLIPTokenizer(vocab=vocab, merges=merges)
    if len(tok) != VOCAB_SIZE:
        raise RuntimeError(f"tokenizer has {len(tok)} tokens, expected {VOCAB_SIZE}")
    tok.model_max_length = 77
    tok.save_pretrained(model_dir)

    CLIPImageProcessorPil(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224}, do_resize=True,
                          do_center_crop=True, do_rescale=True, rescale_factor=1 / 255, do_normalize=True,
                          image_mean=OPENAI_CLIP_MEAN, image_std=OPENAI_CLIP_STD, resample=3,
                          do_convert_rgb=True).save_pretrained(model_dir)

    torch.manual_seed(0)
    model = CLIPModel(CLIPConfig())
    model.eval()
    model.save_pretrained(model_dir)
    (model_dir / "BENCH_READY").write_text("ok\n")
    return model_dir


def ensure(model_dir: Path = MODEL_DIR) -> Path:
    """The cached directory, building it first when missing or incomplete."""
    if not (model_dir / "BENCH_READY").exists():
        print(f"building ViT-B/32 model dir in {model_dir} (once)...", file=sys.stderr, flush=True)
        build(model_dir)
    return model_dir


def check(model_dir: Path = MODEL_DIR) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    ids = tok("a photo of a red car")["input_ids"]
    assert len(tok) == VOCAB_SIZE, len(tok)
    assert ids[0] == 49406 and ids[-1] == 49407, ids
    print(f"{model_dir}: tokenizer {type(tok).__name__} {len(tok)} tokens; 'a photo of a red car' -> {ids}")


if __name__ == "__main__":
    d = ensure()
    check(d)
    print(d)
