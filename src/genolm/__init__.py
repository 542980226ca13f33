"""genolm: DNA language models with Lightning, Hydra and Hugging Face transformers."""

__version__ = "0.1.0"
