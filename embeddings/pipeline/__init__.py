"""The workers' side: encoding claimed images (ingest), reading their text (ocr, with its child
process in ocr_engine), and the RQ worker class that keeps the model loaded (worker).
May import: everything below it, the library package included (the worker's periodic scans)."""
