"""localdigest: offline Japanese digests of research papers with a local llama.cpp model."""

__version__ = "0.1.0"
