"""Helpers of `make bench-scale` (eval/bench_scale.py): the real-text base corpus, cached
embeddings, and the pure functions that grow it to a size and score the results."""
