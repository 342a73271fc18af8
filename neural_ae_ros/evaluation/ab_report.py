"""``summary.json`` and ``report.html`` of an A/B run, from its recorded bags alone (no ROS).

The report is one self-contained HTML file (images embedded as base64 PNG, readable offline):
both sides' exposure traces on one plot, the AP table, the gaps (missing frames, nodes that
died), and the two sides' thumbnails side by side, with their detections drawn, at the moments
that matter: the scene's illumination events (tunnel exit, low sun ...) and a few frames after.
"""
from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from .ab_scoring import Recording, _stamp_ns, read_recording, score_side

#: Frames after an event shown side by side (the moment, the settling, settled).
MOMENT_OFFSETS = (0, 3, 10, 30)
#: Colour per side: trace, missing-frame shading and boxes in the thumbnails.
SIDE_COLOURS = {"a": (230, 90, 30), "b": (30, 140, 230)}
SUMMARY_KEYS = ("method", "map", "ap", "frames_scored", "frames_missing", "missing", "step_events", "oscillation",
                "node_deaths", "end_reason", "map_reason", "frames", "num_gt", "num_det")


def score_and_report(bags: Dict[str, str], out_dir, run: Optional[dict] = None) -> Dict:
    """Score each side's bag, write ``summary.json`` and ``report.html`` into ``out_dir``;
    returns the summary ``{"a": {...}, "b": {...}}``."""
    out_dir = Path(out_dir)
    recordings = {side: read_recording(path, with_thumbnails=True) for side, path in bags.items()}
    full = {side: score_side(rec, f"/{side}") for side, rec in recordings.items()}
    summary = {side: {k: s[k] for k in SUMMARY_KEYS if k in s} for side, s in full.items()}
    for side, s in summary.items():
        fps = ((run or {}).get("fps") or {}).get(side)
        if fps is not None:
            s["fps"] = fps
        s["bag"] = str(bags[side])
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    (out_dir / "report.html").write_text(report_html(full, recordings, run or {}), encoding="utf-8")
    return summary


# ---------------------------------------------------------------------------------- images
def _png_b64(fig_or_array) -> str:
    buf = io.BytesIO()
    if isinstance(fig_or_array, np.ndarray):
        from PIL import Image

        Image.fromarray(fig_or_array).save(buf, format="PNG")
    else:
        fig_or_array.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def traces_png(full: Dict[str, dict], events: List[dict]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_e, ax_l) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    for side, s in full.items():
        tr = s.get("exposure_trace") or []
        idx = np.array([t["index"] for t in tr])
        label = f"{side}: {s.get('method')}"
        colour = np.array(SIDE_COLOURS.get(side, (128, 128, 128))) / 255
        if len(idx):
            ax_e.semilogy(idx, np.array([t["effective_exposure_s"] for t in tr]) * 1e3, label=label, color=colour)
            ax_l.plot(idx, [t["mean_level_dn"] for t in tr], label=label, color=colour)
        for gap in s.get("missing", []):
            ax_e.axvspan(gap["first"] - 0.5, gap["last"] + 0.5, color=colour, alpha=0.15)
    for ax in (ax_e, ax_l):
        for e in events:
            ax.axvline(e["frame"], color="k", ls=":", lw=1)
            ax.annotate(e["kind"], (e["frame"], 1.0), xycoords=("data", "axes fraction"), fontsize=8,
                        va="top", rotation=90)
    ax_e.set_ylabel("effective exposure K t (ms)")
    ax_l.set_ylabel("mean raw level (DN)")
    ax_l.set_xlabel("frame of the recording (shaded: missing frames of that side)")
    ax_e.legend()
    fig.tight_layout()
    try:
        return _png_b64(fig)
    finally:
        plt.close(fig)


def _draw_boxes(img: np.ndarray, boxes: np.ndarray, colour) -> np.ndarray:
    out = img.copy()
    h, w = out.shape[:2]
    for x0, y0, x1, y1 in np.round(boxes).astype(int):
        x0, x1 = np.clip([x0, x1], 0, w - 1)
        y0, y1 = np.clip([y0, y1], 0, h - 1)
        out[y0, x0:x1 + 1] = colour
        out[y1, x0:x1 + 1] = colour
        out[y0:y1 + 1, x0] = colour
        out[y0:y1 + 1, x1] = colour
    return out


def _thumbnail_cell(rec: Recording, side: str, frame: int, min_score: float = 0.3) -> str:
    ns = f"/{side}"
    e = rec.exposures.get(ns, {}).get(frame)
    if e is None:
        return "<td class='gap'>missing: never captured</td>"
    stamp = _stamp_ns(e.header)
    th = rec.thumbnails.get(ns, {}).get(stamp)
    if th is None:
        return "<td class='gap'>missing: no image recorded</td>"
    img = np.frombuffer(bytes(th.data), np.uint8).reshape(th.height, th.step // 3 if th.step else th.width, 3)
    img = img[:, :th.width]
    det = rec.detections.get(ns, {}).get(stamp)
    caption = f"K t = {e.exposure_time_s * e.analog_gain * 1e3:.3g} ms, level {e.mean_level_dn:.0f} DN"
    if det is None:
        caption += "; <b>no detections recorded</b>"
    else:
        rgb_w = (rec.run_end.get("rgb_size") or {}).get(side, [None])[0] or rec.scene_info.get("width") or th.width
        k = th.width / float(rgb_w)
        boxes = [[(d.bbox.center.position.x - d.bbox.size_x / 2) * k, (d.bbox.center.position.y - d.bbox.size_y / 2) * k,
                  (d.bbox.center.position.x + d.bbox.size_x / 2) * k, (d.bbox.center.position.y + d.bbox.size_y / 2) * k]
                 for d in det.detections if d.results and d.results[0].hypothesis.score >= min_score]
        if boxes:
            img = _draw_boxes(img, np.asarray(boxes), SIDE_COLOURS.get(side, (255, 255, 0)))
        caption += f"; {len(boxes)} detections (score &ge; {min_score})"
    return f"<td><img src='data:image/png;base64,{_png_b64(img)}'><br><small>{caption}</small></td>"


def moments(events: List[dict], frames: int) -> List[tuple]:
    """(frame, label) pairs: each event and ``MOMENT_OFFSETS`` frames after it, within the run."""
    out = []
    for e in events:
        for d in MOMENT_OFFSETS:
            f = int(e["frame"]) + d
            if f < frames:
                out.append((f, f"{e['kind']} {'+' + str(d) if d else ''}".strip()))
    return out


# ---------------------------------------------------------------------------------- html
def _fmt(v, pct: bool = True) -> str:
    if v is None:
        return "n/a"
    return f"{100 * v:.1f}" if pct else f"{v}"


def report_html(full: Dict[str, dict], recordings: Dict[str, Recording], run: dict) -> str:
    sides = list(full)
    any_rec = recordings[sides[0]]
    info = any_rec.ab_info
    events = [{"frame": int(e["frame"]), "kind": e["kind"]} for e in any_rec.scene_info.get("events", [])
              if int(e["frame"]) < int(info.get("frames", 10**9))]
    esc = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>A/B exposure evaluation</title><style>",
             "body{font-family:sans-serif;margin:1.5em} table{border-collapse:collapse} "
             "td,th{border:1px solid #bbb;padding:3px 8px;text-align:right} td.gap{background:#fdd;text-align:center}"
             " .warn{color:#a00}</style></head><body>",
             "<h1>A/B: " + " vs ".join(esc(f"{s}: {full[s].get('method')}") for s in sides) + "</h1>",
             f"<p>Scene recording <code>{esc(str(info.get('scene_bag')))}</code>, {info.get('frames')} frames at "
             f"{info.get('fps')} fps, pace <b>{esc(str(info.get('pace')))}</b>, actuation latency "
             f"{info.get('actuation_latency_frames')} frames. Scored offline from the recorded bags "
             f"({', '.join(esc(str(r.path)) for r in recordings.values())}).</p>"]
    # AP table
    classes = list(any_rec.scene_info.get("classes", []))
    parts.append("<h2>Detection AP at IoU 0.5 (%)</h2><table><tr><th>class</th>"
                 + "".join(f"<th>{esc(s)}: {esc(str(full[s].get('method')))}</th>" for s in sides) + "</tr>")
    for c in classes:
        parts.append(f"<tr><td>{esc(c)}</td>" + "".join(f"<td>{_fmt(full[s]['ap'].get(c))}</td>" for s in sides) + "</tr>")
    parts.append("<tr><th>mAP</th>" + "".join(f"<th>{_fmt(full[s]['map'])}</th>" for s in sides) + "</tr>")
    parts.append("<tr><td>frames scored / missing</td>" + "".join(
        f"<td>{full[s]['frames_scored']} / {full[s]['frames_missing']}</td>" for s in sides) + "</tr></table>")
    for s in sides:
        if full[s].get("map_reason"):
            parts.append(f"<p class='warn'>{esc(s)}: mAP n/a: {esc(full[s]['map_reason'])}</p>")
    # gaps
    gaps = []
    for s in sides:
        for d in full[s].get("node_deaths", []):
            gaps.append(f"<li class='warn'>side {esc(s)}: <b>{esc(d['node'])}</b> died (exit code {d['exit_code']}) "
                        f"{d['after_s']} s into the run, after {d['frames_recorded_before']} frames; log "
                        f"<code>{esc(d['log'])}</code></li>")
        for g in full[s].get("missing", []):
            gaps.append(f"<li>side {esc(s)}: frames {g['first']}-{g['last']} ({g['frames']}) missing: "
                        f"{esc(g['reason'])}</li>")
        if full[s].get("end_reason") and full[s]["end_reason"] != "complete":
            gaps.append(f"<li class='warn'>side {esc(s)}: {esc(full[s]['end_reason'])}</li>")
    parts.append("<h2>Gaps</h2>" + (f"<ul>{''.join(gaps)}</ul>" if gaps else "<p>none: every frame scored on both sides</p>"))
    # exposure loop
    parts.append(f"<h2>Exposure traces</h2><img src='data:image/png;base64,{traces_png(full, events)}'>")
    parts.append("<h3>After the illumination events</h3><table><tr><th>event</th>"
                 + "".join(f"<th>{esc(s)}: frames to settle (&plusmn;0.5 EV)</th><th>{esc(s)}: overshoot EV</th>"
                           for s in sides) + "</tr>")
    for k, e in enumerate(events):
        cells = ""
        for s in sides:
            se = full[s]["step_events"][k] if k < len(full[s]["step_events"]) else {}
            conv = se.get("frames_to_converge")
            conv_txt = (str(conv) if conv is not None else
                        (f"camera limit after {se.get('frames_to_camera_limit')}" if se.get("limited_by_camera") else "not reached"))
            ov = se.get("overshoot_ev")
            cells += f"<td>{conv_txt}</td><td>{'n/a' if ov is None else format(ov, '.2f')}</td>"
        parts.append(f"<tr><td>{esc(e['kind'])} @ {e['frame']}</td>{cells}</tr>")
    parts.append("</table><p>Oscillation (sign changes of the exposure step per 100 steady frames): "
                 + "; ".join(f"{esc(s)}: " + (f"{full[s]['oscillation'].get('sign_changes_per_100_frames', 0):.1f} over "
                                              f"{full[s]['oscillation']['frames_scored']} frames"
                                              if full[s]["oscillation"].get("frames_scored") else "n/a")
                             for s in sides) + "</p>")
    # moments
    ms = moments(events, int(info.get("frames", 0)))
    parts.append("<h2>Side by side at the moments that matter</h2>")
    if not ms:
        parts.append("<p>The recording has no illumination events.</p>")
    else:
        parts.append("<table><tr><th>frame</th>" + "".join(f"<th>{esc(s)}: {esc(str(full[s].get('method')))}</th>"
                                                          for s in sides) + "</tr>")
        for f, label in ms:
            parts.append(f"<tr><td>{f}<br>{esc(label)}</td>"
                         + "".join(_thumbnail_cell(recordings[s], s, f) for s in sides) + "</tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)
