"""The bundled demo: drawn shapes (synth), the demo CLIP model's recipe (train) and weights (model/), its metric."""
