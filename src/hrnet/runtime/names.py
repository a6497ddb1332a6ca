"""The runtimes and their precisions, importable without torch (the command line builds its choices
from them)."""

RUNTIMES = ("torch", "onnxruntime", "openvino")
# The precisions each runtime offers: torch autocast, the exported runtimes float32 or int8 (QDQ).
PRECISIONS: dict[str, tuple[str, ...]] = {"torch": ("fp32", "fp16", "bf16"), "onnxruntime": ("fp32", "int8"),
                                          "openvino": ("fp32", "int8")}
