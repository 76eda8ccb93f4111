"""The engine seam: what every loaded model offers the service, whichever engine runs its towers.

A loaded model has `image_features(pixels)` ((n, 3, h, w) float32, as its `preprocessor` makes
them) and `text_features(texts)`, both returning L2-normalised float32 rows, plus the facts below.
`TorchModel` (clip.loading) runs the towers in PyTorch, `OnnxModel` (clip.onnx_engine) in ONNX
Runtime from an export of the same weights, `ImmichModel` (clip.immich) runs Immich's ONNX files.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

CLIP_TEXT_INPUTS = ("input_ids", "attention_mask")


@dataclass(kw_only=True)
class LoadedModel:
    tokenizer: object
    preprocessor: object  # clip.preprocessing.Preprocessor or an object with the same methods
    source: str
    device: str
    precision: str
    dim: int
    image_size: int
    max_text_len: int
    parameters: int = 0  # counted before any int8 quantisation (packed weights are not parameters)
    engine: str = "torch"
    family: str = "clip"  # "clip", "siglip" or "immich"
    # SigLIP was trained on texts padded to a fixed length (64), and its text tower pools the last
    # position, so a text padded differently lands elsewhere in the space: pad_to_max pads it as trained.
    # CLIP pads to the longest text of a batch: a short query costs a fraction of the work.
    pad_to_max: bool = False
    lower_case: bool = False  # lowercase before tokenising (the tokenizer config's do_lower_case)
    text_inputs: tuple[str, ...] = CLIP_TEXT_INPUTS  # what the text tower takes (SigLIP: input_ids only)
    # Fast tokenizers mutate their padding/truncation state per call: concurrent calls can fail
    # with "Already borrowed", so web threads take turns (tokenising is microseconds).
    tokenizer_lock: threading.Lock = field(default_factory=threading.Lock)

    def tokenize(self, texts: list[str], tensors: str) -> dict:
        """The text tower's inputs for `texts` ("pt" or "np" arrays)."""
        if self.lower_case:
            texts = [t.lower() for t in texts]
        with self.tokenizer_lock:
            tokens = self.tokenizer(texts, padding="max_length" if self.pad_to_max else "longest", truncation=True,
                                    max_length=self.max_text_len, return_tensors=tensors)
        return {name: tokens[name] for name in self.text_inputs}

    def image_features(self, pixels):  # pragma: no cover - every engine overrides it
        raise NotImplementedError

    def text_features(self, texts: list[str]):  # pragma: no cover
        raise NotImplementedError
