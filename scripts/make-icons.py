#!/usr/bin/env python3
"""Draws the site's icons at the fixed paths browsers and phones ask for
(`/favicon.ico`, `/apple-touch-icon.png`, `/android-chrome-*.png`, ...) into
crates/picoshare/assets/icons/, from the same design as assets/favicon.svg: a
blue rounded square with a white arrow pointing up (a 32 x 32 drawing).

The PNG and ICO files are written by this script alone (zlib and struct from
Python's standard library, 4 x 4 samples per pixel for smooth edges), so they
are our own drawing and can be made again at any time:

    python3 scripts/make-icons.py

The output is the same on every run; the server embeds the files
(crates/picoshare/src/http/pages/assets.rs) and serves them at the root.
"""
import os
import struct
import zlib

OUT = os.path.join(os.path.dirname(__file__), "..", "crates", "picoshare", "assets", "icons")

BLUE = (0x2F, 0x6F, 0xDF)
WHITE = (0xFF, 0xFF, 0xFF)
# The arrow of favicon.svg, `M9 18l7-8 7 8h-4v6h-6v-6z`, as absolute points.
ARROW = [(9, 18), (16, 10), (23, 18), (19, 18), (19, 24), (13, 24), (13, 18)]
SAMPLES = 4


def in_rounded_square(x, y, radius):
    """Whether (x, y) lies in the 32 x 32 square with corners of `radius`."""
    if not (0 <= x <= 32 and 0 <= y <= 32):
        return False
    cx = min(max(x, radius), 32 - radius)
    cy = min(max(y, radius), 32 - radius)
    return (x - cx) ** 2 + (y - cy) ** 2 <= radius * radius


def in_polygon(x, y, points):
    """Even-odd rule."""
    inside = False
    n = len(points)
    for i in range(n):
        x1, y1 = points[i]
        x2, y2 = points[(i + 1) % n]
        if (y1 > y) != (y2 > y):
            if x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
                inside = not inside
    return inside


def render(size, radius=7.0, background=True, arrow_scale=1.0):
    """RGBA rows of the icon at `size` pixels. `radius` 0 fills the square
    (phones round it themselves); without `background` the arrow stands alone
    on transparency (Windows tiles put their own colour behind it)."""
    # The arrow scaled about the centre of the drawing.
    arrow = [(16 + (px - 16) * arrow_scale, 17 + (py - 17) * arrow_scale) for px, py in ARROW]
    scale = 32.0 / size
    rows = []
    for j in range(size):
        row = bytearray()
        for i in range(size):
            blue = white = 0
            for sj in range(SAMPLES):
                for si in range(SAMPLES):
                    x = (i + (si + 0.5) / SAMPLES) * scale
                    y = (j + (sj + 0.5) / SAMPLES) * scale
                    if in_polygon(x, y, arrow):
                        white += 1
                    elif background and in_rounded_square(x, y, radius):
                        blue += 1
            total = SAMPLES * SAMPLES
            covered = blue + white
            if covered == 0:
                row += bytes((0, 0, 0, 0))
                continue
            # Colour of the covered part, opacity of the coverage.
            rgb = tuple(round((BLUE[k] * blue + WHITE[k] * white) / covered) for k in range(3))
            row += bytes(rgb + (round(255 * covered / total),))
        rows.append(bytes(row))
    return rows


def png(rows):
    size = len(rows)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + r for r in rows)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def ico(pngs):
    """An ICO file whose images are PNGs (each listed with its size)."""
    header = struct.pack("<HHH", 0, 1, len(pngs))
    offset = 6 + 16 * len(pngs)
    entries = b""
    for size, data in pngs:
        dim = 0 if size >= 256 else size
        entries += struct.pack("<BBBBHHII", dim, dim, 0, 0, 1, 32, len(data), offset)
        offset += len(data)
    return header + entries + b"".join(d for _, d in pngs)


def main():
    os.makedirs(OUT, exist_ok=True)
    files = {}
    for size in (16, 32, 48):
        files[f"favicon-{size}x{size}.png"] = png(render(size))
    files["favicon.ico"] = ico([(s, files[f"favicon-{s}x{s}.png"]) for s in (16, 32, 48)])
    del files["favicon-48x48.png"]
    files["apple-touch-icon.png"] = png(render(180, radius=0.0))
    files["android-chrome-192x192.png"] = png(render(192))
    files["android-chrome-384x384.png"] = png(render(384))
    files["mstile-150x150.png"] = png(render(150, background=False, arrow_scale=0.8))
    for name, data in sorted(files.items()):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
        print(f"{name}: {len(data)} bytes")


if __name__ == "__main__":
    main()
