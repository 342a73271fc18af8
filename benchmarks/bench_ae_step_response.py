"""Step response of the exposure controller (no ROS): frames until the mean level is back within
0.5 EV of its target after a brightness step, and the overshoot past it, per step size, actuation
latency, method and smoothing. Scene: a textured log-normal scene (~3 decades between its darkest
and brightest 1 %) through the sensor model (Eq. 1-3, clipping) and the camera scheduler.

Then, for the fast controller, dithering on a steady scene under a method whose decisions
carry Gaussian noise (what a network deciding from noisy frames does): sign changes of the
exposure step per 100 frames without (``confirm_frames`` 1) and with the confirmation rule.

    .venv/bin/python benchmarks/bench_ae_step_response.py [--latencies 0 2 5] [--smoothing fast]
"""
import argparse

import torch

from neural_ae_ros.ae import ControllerSettings
from neural_ae_ros.ae.step_response import run_step, steady_dithering

STEPS = (1, 2, 3, 4, 5, 6, 8, 10, -1, -2, -4, -6, -8, -10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", nargs="+", default=["average", "gradient"])
    ap.add_argument("--latencies", nargs="+", type=int, default=[0, 2, 5])
    ap.add_argument("--smoothing", default="fast", choices=("fast", "paper_ema"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"frames to within 0.5 EV (held 3 frames) / overshoot EV after a step of N EV; smoothing {args.smoothing}; "
          f"'-' = not within 80 frames")
    print(f"{'method':>9} {'L':>2} | " + " | ".join(f"{s:+d} EV".rjust(10) for s in STEPS))
    for method in args.methods:
        for latency in args.latencies:
            cells = []
            for step in STEPS:
                run = run_step(method, float(step), latency, frames=80, step_frame=30,
                               settings=ControllerSettings(smoothing=args.smoothing))
                ev = run.step_event
                n = ev["frames_to_converge"]
                cells.append(f"{'-' if n is None else n:>3}/{ev['overshoot_ev']:.2f}".rjust(10))
            print(f"{method:>9} {latency:>2} | " + " | ".join(cells), flush=True)
    if args.smoothing != "fast":
        return
    print("\nsteady scene, method noise N(0, sigma) EV per decision, seeds 0-2: "
          "sign changes per 100 frames (largest distance from the right exposure, EV)")
    for sigma in (0.08, 0.12):
        cells = []
        for confirm in (1, 3):
            runs = [steady_dithering(sigma, ControllerSettings(confirm_frames=confirm), seed=seed) for seed in range(3)]
            rates = [r["sign_changes_per_100_frames"] for r in runs]
            worst = max(r["worst_ev"] for r in runs)
            cells.append(f"confirm_frames {confirm}: {min(rates):.1f}-{max(rates):.1f} ({worst:.2f} EV)")
        print(f"  sigma {sigma:.2f} EV | " + " | ".join(cells) + f" | {runs[0]['frames_scored']} steps scored",
              flush=True)


if __name__ == "__main__":
    main()
