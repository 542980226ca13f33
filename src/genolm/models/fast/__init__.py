"""Optional fast paths for Mixtral DNA models, equal to plain transformers to float rounding.

Attention kernel and MoE dispatch (registered in transformers' attention and experts interfaces),
a lean trunk and fused language-model-head losses; :mod:`genolm.models.fast.switch` turns them
on or off (``fast: auto | true | false``).
"""
