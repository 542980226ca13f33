"""LightningModules: one per task."""
