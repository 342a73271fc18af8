"""Imaging: the sensor model (paper 000 Eq. 1-3), exposure arithmetic (Eq. 5, 6, clamping), the
simulated camera, histograms (Section 4.1), the differentiable ISP, HDR I/O and merging (Eq. 7)."""
