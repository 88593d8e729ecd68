"""Megatron-style trainer: TP/EP/DP applied from outside the model, bit-exact resume."""
