"""An ONNX session's threads come from the process's CPUs (or OMP_NUM_THREADS), not from the OpenMP
count torch shares with FAISS: a web process sets that to 1 for FAISS before its model loads, which
gave the text tower of every web process one thread."""
import faiss
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from embeddings.clip import device, onnx_engine


@pytest.fixture
def tiny_model(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "tiny", [x], [y])
    path = tmp_path / "tiny.onnx"
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # what the installed ONNX Runtime reads (newer onnx writes a newer one)
    onnx.save(model, str(path))
    return path


@pytest.fixture
def faiss_one_thread():
    """What clipsearch.wsgi leaves in a web process: FAISS at one OpenMP thread, and torch's count
    with it (whether the two share the count depends on which loaded first: set both)."""
    before = torch.get_num_threads()
    faiss.omp_set_num_threads(1)
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_a_session_keeps_the_processs_cpus_after_faiss_took_one_thread(tiny_model, faiss_one_thread, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(device.os, "sched_getaffinity", lambda pid: {0, 1, 2})
    assert torch.get_num_threads() == 1
    assert onnx_engine.session(tiny_model).get_session_options().intra_op_num_threads == 3


def test_omp_num_threads_still_caps_a_session(tiny_model, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert onnx_engine.session(tiny_model).get_session_options().intra_op_num_threads == 1
