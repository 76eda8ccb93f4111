"""The CLIP model code: choosing, loading and running a model. No Django imports, so it serves
the web app, the workers, the benchmarks and the training script alike.

config: CLIP_* values and model names; device: device and precision choice; loading: the
per-process model cache and the engine that runs the towers; preprocessing: image decoding and
the processor's resize/crop/normalise; service: CLIPService, the encoding API; vectors: cosine.
"""
