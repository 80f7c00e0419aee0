"""Knowledge fusion: text, knowledge-graph and retrieval context fused with image features;
zero-shot label embeddings.
"""
