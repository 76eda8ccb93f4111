"""Model-test fixtures: ONNX exports in a session folder (not the data folder, which would keep an
export of every temporary model), and one ViT-B/32 directory shared by the modules that need it."""
import shutil

import pytest
import torch

from embeddings.clip import onnx_engine
from embeddings.clip.config import DEMO_MODEL_DIR


@pytest.fixture(scope="session", autouse=True)
def onnx_cache(tmp_path_factory):
    folder = onnx_engine.CACHE_DIR = tmp_path_factory.mktemp("onnx")
    yield folder
    onnx_engine.CACHE_DIR = None
    shutil.rmtree(folder, ignore_errors=True)  # ViT-B/32 exports are ~0.6 GB


@pytest.fixture(scope="session")
def vitb32_dir(tmp_path_factory):
    """The ViT-B/32 architecture with random weights (computes exactly as the real one).

    The demo model's tokenizer stands in for CLIP's (its ids are all inside ViT-B/32's vocabulary);
    the image processor's defaults are the openai ones (224 px, CLIP mean and std).
    """
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel, CLIPTokenizer

    path = tmp_path_factory.mktemp("vitb32")
    torch.manual_seed(0)
    CLIPModel(CLIPConfig()).save_pretrained(path)
    CLIPTokenizer.from_pretrained(DEMO_MODEL_DIR).save_pretrained(path)
    CLIPImageProcessorPil().save_pretrained(path)
    yield str(path)
    shutil.rmtree(path, ignore_errors=True)
