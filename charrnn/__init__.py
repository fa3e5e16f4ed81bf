"""charrnn: train recurrent language models on any text and generate text from them.

    import charrnn
    run = charrnn.train("input.txt", time_budget="2m")
    print(charrnn.load(run.run_dir).generate(prime="ROMEO:", length=200))

The API lives in charrnn/api.py and is loaded on first use, so `import charrnn` imports no torch.
"""

__version__ = "0.1.0"
__all__ = ["Model", "load", "train"]


def __getattr__(name: str):
    if name in __all__:
        from charrnn import api

        return getattr(api, name)
    raise AttributeError(f"module 'charrnn' has no attribute {name!r}")
