"""Optional fast paths for Mixtral DNA models (attention kernel, MoE dispatch, fused loss).

Equal to plain transformers to float rounding.
"""
