"""Contact sheets: tone-mapped HDR scenes with their boxes, as one PNG grid.

Tone mapping (display only, not the project's ISP): Reinhard's global operator with the
log-average luminance as key (0.18) and the 99.9th percentile as white, applied to
luminance with the colour ratios kept, then the sRGB transfer curve.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Optional

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..classes import CLASS_NAMES

#: Box colour (RGB) per class, in the order of :data:`neural_ae_ros.classes.CLASS_NAMES`.
CLASS_COLOURS = dict(zip(CLASS_NAMES, [(255, 160, 0), (255, 60, 200), (0, 230, 255), (255, 255, 0), (80, 255, 80),
                                       (255, 80, 80)], strict=True))


def tone_map(radiance: np.ndarray, key: float = 0.18) -> np.ndarray:
    """``(3, H, W)`` linear radiance -> ``(H, W, 3)`` uint8 sRGB for display."""
    r = np.asarray(radiance, np.float64)
    y = 0.2126 * r[0] + 0.7152 * r[1] + 0.0722 * r[2]
    y = np.maximum(y, 1e-12)
    lavg = float(np.exp(np.mean(np.log(y))))
    lm = key * y / lavg
    lw = max(float(np.percentile(lm, 99.9)), 1e-6)
    ld = lm * (1 + lm / lw ** 2) / (1 + lm)
    rgb = r / y[None] * ld[None]
    rgb = np.clip(rgb, 0, 1)
    srgb = np.where(rgb <= 0.0031308, 12.92 * rgb, 1.055 * np.power(rgb, 1 / 2.4) - 0.055)
    return (np.clip(srgb, 0, 1) * 255 + 0.5).astype(np.uint8).transpose(1, 2, 0)


def draw_boxes(img: Image.Image, boxes: Iterable[dict], scale: float = 1.0, ignored: Iterable[dict] = (),
               labels: bool = True) -> None:
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    for b in ignored:
        if b.get("box"):
            x0, y0, x1, y1 = [v * scale for v in b["box"]]
            d.rectangle([x0, y0, max(x0, x1 - 1), max(y0, y1 - 1)], outline=(128, 128, 128))
    for b in boxes:
        x0, y0, x1, y1 = [v * scale for v in b["box"]]
        col = CLASS_COLOURS.get(b["cls"], (255, 255, 255))
        d.rectangle([x0, y0, max(x0, x1 - 1), max(y0, y1 - 1)], outline=col)
        if labels and (y1 - y0) > 10:
            d.text((x0 + 1, max(0, y0 - 10)), b["cls"].split("_")[0], fill=col, font=font)


def render_tile(radiance, boxes, caption: str = "", width: Optional[int] = None, ignored=()) -> Image.Image:
    img = Image.fromarray(tone_map(radiance))
    scale = 1.0
    if width is not None and width != img.width:
        scale = width / img.width
        img = img.resize((width, int(round(img.height * scale))), Image.BILINEAR)
    draw_boxes(img, boxes, scale, ignored)
    if caption:
        d = ImageDraw.Draw(img)
        font = ImageFont.load_default()
        d.rectangle([0, 0, img.width, 12], fill=(0, 0, 0))
        d.text((2, 1), caption, fill=(255, 255, 255), font=font)
    return img


def contact_sheet(tiles: list, cols: int = 4) -> Image.Image:
    if not tiles:
        raise ValueError("no tiles")
    w, h = tiles[0].width, tiles[0].height
    rows = (len(tiles) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * w, rows * h), (0, 0, 0))
    for i, t in enumerate(tiles):
        sheet.paste(t, ((i % cols) * w, (i // cols) * h))
    return sheet


def sheet_from_dir(scene_dir, out_png, max_scenes: int = 16, cols: int = 4, tile_width: int = 320,
                   show_ignored: bool = True) -> Path:
    """Contact sheet of the labelled frame of the first ``max_scenes`` scenes of a generated split."""
    from .generate import load_scene

    scene_dir = Path(scene_dir)
    with open(scene_dir / "index.json", encoding="utf-8") as fh:
        index = json.load(fh)
    tiles = []
    for row in index["scenes"][:max_scenes]:
        sc = load_scene(scene_dir / row["file"])
        fr = sc["frames"][-1]
        cap = f"#{row['index']} {row['kind']} {row['dynamic_range_db']:.0f} dB"
        tiles.append(render_tile(sc["radiance"][-1], fr["boxes"], cap, tile_width,
                                 fr["ignored"] if show_ignored else ()))
    out_png = Path(out_png)
    contact_sheet(tiles, cols).save(out_png)
    return out_png


__all__ = ["CLASS_COLOURS", "tone_map", "draw_boxes", "render_tile", "contact_sheet", "sheet_from_dir"]
