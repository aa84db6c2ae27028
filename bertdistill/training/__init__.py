"""The shared training engine: one loop for fine-tuning, distillation (stage 2) and stage-1 pre-training."""
