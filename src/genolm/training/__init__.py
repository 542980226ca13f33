"""Training infrastructure shared by pretraining and finetuning.

Lightning trainer, resume/preemption, experiment tracking, sweep summaries.
"""
