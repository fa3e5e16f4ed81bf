"""charrnn: train recurrent language models on any text and generate text from them."""

__version__ = "0.1.0"
