"""Evaluation: detection metrics (AP@0.5), closed-loop scores, plots."""
