"""The vector index: kinds by collection size (kinds), the host's file (file), building it (build),
a process's in-memory delta (delta) and rows (rows), gap-safe catching up (catchup), the Redis
counter that says "rows changed" (signal), and the VectorIndex searches use (vector_index).
May import: models, queue."""
