"""One module per console entrypoint (``genolm-<verb>``).

Each holds ``run(cfg)``/``train(cfg)`` plus its ``@hydra.main`` wrapper.
"""
