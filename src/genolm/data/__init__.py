"""Data: sequence readers, corpus preparation, tokenizers, token caches, DataModules."""
