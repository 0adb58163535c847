"""mnemara: a Claude chat runtime where you see and shape exactly what the model sees."""

__version__ = "0.1.0"
