"""gunicorn's settings for every server started from the repository root (`make run`, the benches,
the tests); command-line flags add to these. The request line may be 8,190 bytes (gunicorn's
most; its default is 4,094), so that any query the API's schema allows fits: see MAX_Q in
embeddings/schemas.py."""
limit_request_line = 8190
