"""One module per console entrypoint (``genolm-<verb>``): ``run(cfg)``/``train(cfg)`` plus its ``@hydra.main`` wrapper."""
