"""Write a transformers CLIP model (default: the bundled demo model) in Immich's ONNX layout.

    .venv/bin/python -m demo.export_immich OUT_DIR [--model demo] [--resize-mode shortest|squash]

The result is what Immich's model repositories hold (config.json in open_clip's style, visual/ and
textual/ ONNX graphs with a static batch of 1, preprocess_cfg.json, tokenizer.json and
tokenizer_config.json), so CLIP_MODEL_NAME=OUT_DIR runs it through clipsearch's Immich loader.
"""
from __future__ import annotations

import argparse
import json
import shutil
import warnings
from pathlib import Path

import torch

from embeddings.clip.loading import load_torch


class _Visual(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, image):
        return torch.nn.functional.normalize(self.model.get_image_features(pixel_values=image).pooler_output, dim=-1)


class _Textual(torch.nn.Module):
    """Immich's textual input: int32 token ids, padded with the pad token to the context length.
    CLIP's text tower is causal and pools at the first end token, so no attention mask is needed
    when the pad token is the end token (as in open_clip's and Immich's CLIP tokenizers)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, text):
        features = self.model.get_text_features(input_ids=text.to(torch.int64)).pooler_output
        return torch.nn.functional.normalize(features, dim=-1)


class _MaskedTextual(torch.nn.Module):
    """The input shape of Immich's M-CLIP (XLM-R) and LABSE models: int32 `input_ids` and
    `attention_mask`. Tokens the mask leaves out are read as the pad token, so a loader that sends
    no mask, or a wrong one, gets other embeddings (the tests check it does not)."""

    def __init__(self, model, pad_id: int):
        super().__init__()
        self.model, self.pad_id = model, pad_id

    def forward(self, input_ids, attention_mask):
        ids = torch.where(attention_mask.bool(), input_ids, torch.full_like(input_ids, self.pad_id))
        features = self.model.get_text_features(input_ids=ids.to(torch.int64)).pooler_output
        return torch.nn.functional.normalize(features, dim=-1)


def _export(module, example, path: Path, name) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    examples = example if isinstance(example, tuple) else (example,)
    names = list(name) if isinstance(name, (list, tuple)) else [name]
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, examples, str(path), input_names=names, output_names=["embedding"],
                          opset_version=17, dynamo=False)  # no dynamic axes: a static batch of 1, as Immich's


def export(out: Path, model: str = "demo", resize_mode: str = "shortest", text_inputs: str = "text") -> Path:
    """text_inputs: "text" (Immich's CLIP and SigLIP graphs) or "input_ids+attention_mask" (its
    M-CLIP and LABSE graphs)."""
    tm = load_torch(model, "cpu", "fp32")
    if tm.family != "clip":
        raise SystemExit("only CLIP models can be exported in Immich's layout by this script")
    out = Path(out)
    cfg, tok, pre = tm.model.config, tm.tokenizer, tm.preprocessor
    context = tm.max_text_len
    if tok.pad_token_id != cfg.text_config.eos_token_id:
        raise SystemExit("the tokenizer's pad token must be its end token (CLIP pools at the first end token)")
    _export(_Visual(tm.model), torch.zeros(1, 3, *pre.crop), out / "visual" / "model.onnx", "image")
    ids = torch.zeros(1, context, dtype=torch.int32)
    if text_inputs == "text":
        _export(_Textual(tm.model), ids, out / "textual" / "model.onnx", "text")
    elif text_inputs == "input_ids+attention_mask":
        _export(_MaskedTextual(tm.model, tok.pad_token_id), (ids, torch.ones_like(ids)), out / "textual" / "model.onnx",
                ["input_ids", "attention_mask"])
    else:
        raise SystemExit(f"unknown text inputs {text_inputs!r}")
    processor = json.loads((Path(tm.source) / "preprocessor_config.json").read_text())
    (out / "visual" / "preprocess_cfg.json").write_text(json.dumps({
        "size": list(pre.crop), "mode": "RGB", "mean": processor["image_mean"], "std": processor["image_std"],
        "interpolation": "bicubic", "resize_mode": resize_mode, "fill_color": 0}, indent=2))
    vision, text = cfg.vision_config, cfg.text_config
    (out / "config.json").write_text(json.dumps({
        "embed_dim": tm.dim,
        "vision_cfg": {"image_size": vision.image_size, "layers": vision.num_hidden_layers, "width": vision.hidden_size,
                       "patch_size": vision.patch_size},
        "text_cfg": {"context_length": context, "vocab_size": text.vocab_size, "width": text.hidden_size,
                     "heads": text.num_attention_heads, "layers": text.num_hidden_layers}}, indent=2))
    shutil.copy(Path(tm.source) / "tokenizer.json", out / "textual" / "tokenizer.json")
    (out / "textual" / "tokenizer_config.json").write_text(json.dumps({
        "pad_token": tok.pad_token, "bos_token": tok.bos_token, "eos_token": tok.eos_token,
        "model_max_length": context}, indent=2))
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--model", default="demo")
    ap.add_argument("--resize-mode", choices=["shortest", "squash"], default="shortest")
    ap.add_argument("--text-inputs", choices=["text", "input_ids+attention_mask"], default="text")
    args = ap.parse_args()
    print(export(args.out, args.model, args.resize_mode, args.text_inputs))
