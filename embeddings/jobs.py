"""The bodies of the RQ jobs, the top of the workers' side: each calls one part of the pipeline or
the libraries. Queued by dotted path from embeddings.queue (so this path must not move: jobs
already waiting in Redis name it). The queue holds no image data, only the call."""
from embeddings.library import libraries
from embeddings.pipeline import ingest, ocr


def ingest_pending():
    return ingest.ingest_pending()


def scan_library(library_id: int):
    """Scan one library (the API and the admin's "scan now"); skipped if another scan holds it."""
    return libraries.scan_by_id(library_id)


def ocr_pending():
    """Read the text of indexed images waiting for OCR (embeddings.pipeline.ocr)."""
    return ocr.job()
