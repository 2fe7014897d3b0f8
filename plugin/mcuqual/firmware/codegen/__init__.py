"""From an INT8 .tflite to C: constant arrays, requantization parameters, an arena plan, a schedule."""
from mcuqual.firmware.codegen.emit import GeneratedModel, generate

__all__ = ["GeneratedModel", "generate"]
