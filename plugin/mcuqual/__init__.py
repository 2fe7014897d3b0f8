"""mcuqual: qualify a quantized CIFAR-10 CNN for deployment on a microcontroller board."""
__version__ = "0.1.0"
