"""Simple, friendly product pictures drawn with Pillow for the demo data (no downloads)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

W, H = 800, 600
SCALE = 2  # draw large, then shrink: smooth edges without an anti-aliasing library


def _gradient(top: tuple[int, int, int], bottom: tuple[int, int, int]) -> Image.Image:
    image = Image.new("RGB", (W * SCALE, H * SCALE))
    draw = ImageDraw.Draw(image)
    for y in range(H * SCALE):
        t = y / (H * SCALE - 1)
        colour = tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True))
        draw.line([(0, y), (W * SCALE, y)], fill=colour)
    return image


def _s(*values: float) -> list[float]:
    return [v * SCALE for v in values]


def _plate(draw: ImageDraw.ImageDraw) -> None:
    draw.ellipse(_s(120, 380, 680, 560), fill=(245, 240, 228))
    draw.ellipse(_s(160, 400, 640, 540), fill=(235, 228, 212))


def _leg(d: ImageDraw.ImageDraw) -> None:
    _plate(d)
    d.ellipse(_s(190, 200, 520, 470), fill=(176, 74, 60))
    d.ellipse(_s(220, 230, 490, 440), fill=(201, 98, 80))
    d.rounded_rectangle(_s(470, 290, 640, 330), radius=18 * SCALE, fill=(250, 246, 236))
    d.ellipse(_s(610, 270, 660, 315), fill=(250, 246, 236))
    d.ellipse(_s(610, 305, 660, 350), fill=(250, 246, 236))


def _ribs(d: ImageDraw.ImageDraw) -> None:
    _plate(d)
    d.rounded_rectangle(_s(200, 230, 600, 460), radius=40 * SCALE, fill=(186, 82, 66))
    for i in range(6):
        x = 235 + i * 62
        d.rounded_rectangle(_s(x, 215, x + 22, 475), radius=10 * SCALE, fill=(250, 244, 232))


def _whole_lamb(d: ImageDraw.ImageDraw) -> None:
    for x, y in [(260, 260), (340, 230), (420, 240), (480, 280), (300, 320), (400, 320)]:
        d.ellipse(_s(x - 70, y - 60, x + 70, y + 60), fill=(252, 250, 244))
    d.ellipse(_s(500, 200, 600, 300), fill=(70, 58, 52))
    d.ellipse(_s(560, 235, 575, 250), fill=(255, 255, 255))
    for x in (280, 330, 420, 470):
        d.rounded_rectangle(_s(x, 360, x + 22, 470), radius=8 * SCALE, fill=(70, 58, 52))


def _potatoes(d: ImageDraw.ImageDraw) -> None:
    for x, y, r in [(300, 330, 110), (470, 310, 120), (390, 430, 115), (560, 440, 90)]:
        d.ellipse(_s(x - r, y - r * 0.75, x + r, y + r * 0.75), fill=(196, 158, 98))
        for dx, dy in [(-30, -10), (25, 15), (5, -30)]:
            d.ellipse(_s(x + dx - 5, y + dy - 4, x + dx + 5, y + dy + 4), fill=(150, 115, 66))


def _cabbage(d: ImageDraw.ImageDraw) -> None:
    for x in (260, 400, 540):
        d.ellipse(_s(x - 75, 170, x + 75, 500), fill=(160, 200, 90))
        d.ellipse(_s(x - 55, 190, x + 55, 480), fill=(214, 236, 150))
        d.line(_s(x, 200, x, 470), fill=(245, 250, 215), width=8 * SCALE)


def _carrots(d: ImageDraw.ImageDraw) -> None:
    for i, x in enumerate((230, 340, 450, 560)):
        top = 200 + (i % 2) * 25
        d.polygon(_s(x - 40, top, x + 40, top, x, top + 300), fill=(240, 128, 40))
        for leaf in (-25, 0, 25):
            d.polygon(
                _s(x, top + 5, x + leaf - 12, top - 90, x + leaf + 12, top - 90), fill=(70, 150, 60)
            )


def _onions(d: ImageDraw.ImageDraw) -> None:
    for x, y, r in [(300, 360, 110), (480, 340, 120), (400, 450, 80)]:
        d.ellipse(_s(x - r, y - r, x + r, y + r), fill=(150, 70, 120))
        d.arc(
            _s(x - r * 0.6, y - r, x + r * 0.6, y + r),
            200,
            340,
            fill=(190, 120, 165),
            width=6 * SCALE,
        )
        d.polygon(_s(x - 12, y - r + 5, x + 12, y - r + 5, x, y - r - 45), fill=(150, 70, 120))


MOTIFS = {
    "leg": ((255, 236, 204), (240, 196, 150), _leg),
    "ribs": ((255, 232, 214), (236, 186, 160), _ribs),
    "lamb": ((200, 232, 255), (150, 205, 140), _whole_lamb),
    "potato": ((250, 240, 210), (210, 180, 130), _potatoes),
    "cabbage": ((236, 248, 220), (170, 210, 140), _cabbage),
    "carrot": ((255, 244, 220), (250, 200, 140), _carrots),
    "onion": ((246, 232, 246), (210, 170, 200), _onions),
}


def draw(motif: str) -> Image.Image:
    """One 800×600 picture of the motif on a soft gradient."""
    top, bottom, painter = MOTIFS[motif]
    image = _gradient(top, bottom)
    painter(ImageDraw.Draw(image))
    image = image.filter(ImageFilter.SMOOTH)
    return image.resize((W, H), Image.Resampling.LANCZOS)


def ensure(folder: str | Path, motif: str) -> str:
    """Write `demo-<motif>.jpg` into the upload folder unless it is already there."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"demo-{motif}.jpg"
    if not (folder / name).exists():
        draw(motif).save(folder / name, "JPEG", quality=85, optimize=True)
    return name
