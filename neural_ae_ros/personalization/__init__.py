"""Personalised attention-aware exposure control with reinforcement learning (paper 001)."""
