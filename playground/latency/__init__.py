"""Inference optimization: ONNX export and ONNX Runtime variants, PyTorch precision variants,
pruning, distillation and the latency benchmark harness."""
