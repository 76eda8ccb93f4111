"""SigLIP (transformers SiglipModel; fixed-resolution SigLIP2 checkpoints load as SigLIP) on a small
random model saved to disk with a word-level tokenizer made here: texts are padded to the model's
fixed length as it was trained, lowercased when the tokenizer config says so, images squashed to
the model's size; both engines give the same embeddings."""
import json

import numpy as np
import pytest
import torch
from PIL import Image
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast, SiglipConfig, SiglipImageProcessorPil, SiglipModel

from demo import synth
from embeddings.clip.service import CLIPService

WORDS = ["a", "red", "green", "blue", "circle", "square", "small", "large", "photo", "of", "the"]
LENGTH = 64


def build_tiny_siglip(path, lower=True):
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate(WORDS)}}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="</s>", eos_token="</s>", unk_token="<unk>",
                                  model_max_length=LENGTH, do_lower_case=lower)
    tok.save_pretrained(path)
    small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
    config = SiglipConfig(text_config=dict(vocab_size=len(vocab), max_position_embeddings=LENGTH, pad_token_id=1,
                                           eos_token_id=1, **small),
                          vision_config=dict(image_size=32, patch_size=8, **small))
    torch.manual_seed(0)
    SiglipModel(config).eval().save_pretrained(path)
    SiglipImageProcessorPil(size={"height": 32, "width": 32}).save_pretrained(path)
    cfg = json.loads((path / "tokenizer_config.json").read_text())
    assert cfg.get("do_lower_case") is lower  # the setting the loader reads
    return str(path)


@pytest.fixture(scope="module")
def siglip_dir(tmp_path_factory):
    return build_tiny_siglip(tmp_path_factory.mktemp("siglip"))


@pytest.fixture(scope="module", params=["torch", "onnx"])
def svc(request, siglip_dir):
    return CLIPService(siglip_dir, precision="fp32", engine=request.param, enable_caching=False)


def _reference(siglip_dir, texts, padding):
    """Plain transformers, as SigLIP's model card does it (padding="max_length") or not."""
    from transformers import AutoTokenizer

    model, tok = SiglipModel.from_pretrained(siglip_dir).eval(), AutoTokenizer.from_pretrained(siglip_dir)
    ids = tok([t.lower() for t in texts], padding=padding, max_length=LENGTH, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        return torch.nn.functional.normalize(model.get_text_features(input_ids=ids).pooler_output, dim=-1).numpy()


def test_loads_as_siglip(svc):
    info = svc.get_model_info()
    assert info["embedding_dim"] == 32 and info["max_text_length"] == LENGTH and info["image_size"] == 32
    assert svc.load().family == "siglip" and svc.load().pad_to_max


def test_text_is_padded_to_the_fixed_length(svc, siglip_dir):
    tokens = svc.load().tokenize(["a red circle", "a small blue square"], "np")
    assert list(tokens) == ["input_ids"] and tokens["input_ids"].shape == (2, LENGTH)
    got = svc.embed_texts(["a red circle"])
    padded = _reference(siglip_dir, ["a red circle"], "max_length")
    unpadded = _reference(siglip_dir, ["a red circle"], "longest")
    assert (got * padded).sum() >= 0.9999
    assert (got * unpadded).sum() < 0.99  # unpadded lands elsewhere: this test fails without the padding
    # and so a text alone equals the same text in a batch with a longer one
    batch = svc.embed_texts(["red", "a large green circle of the photo"])
    assert (batch[0] * svc.embed_texts(["red"])[0]).sum() >= 0.9999


def test_lowercases_as_the_tokenizer_config_says(svc, siglip_dir, tmp_path):
    a, b = svc.embed_texts(["A RED Circle"]), svc.embed_texts(["a red circle"])
    assert (a * b).sum() >= 0.9999
    cased = CLIPService(build_tiny_siglip(tmp_path / "cased", lower=False), precision="fp32", engine="torch")
    a, b = cased.embed_texts(["A RED Circle"]), cased.embed_texts(["a red circle"])
    assert (a * b).sum() < 0.999  # without do_lower_case, "RED" is an unknown word


def test_images_are_squashed_like_the_siglip_processor(svc, siglip_dir):
    processor = SiglipImageProcessorPil.from_pretrained(siglip_dir)
    images = [img.resize((90, 40)) for img, _ in synth.gallery(3, seed=5)] + [Image.new("RGB", (32, 32), "red")]
    want = processor(images=images, return_tensors="pt")["pixel_values"].numpy()
    pre = svc.load().preprocessor
    got = np.stack([pre.to_array(pre.resize_crop(im), np.empty((3, 32, 32), np.float32)) for im in images])
    assert got.shape == want.shape and np.abs(got - want).max() < 1e-5


def test_engines_agree(siglip_dir):
    ref = CLIPService(siglip_dir, precision="fp32", engine="torch", enable_caching=False)
    onnx = CLIPService(siglip_dir, precision="fp32", engine="onnx", enable_caching=False)
    images = [img for img, _ in synth.gallery(3, seed=9)]
    texts = ["a red circle", "photo of the small blue square"]
    for a, b in ((ref.embed_images(images), onnx.embed_images(images)), (ref.embed_texts(texts), onnx.embed_texts(texts))):
        assert (a * b).sum(1).min() >= 0.9999
