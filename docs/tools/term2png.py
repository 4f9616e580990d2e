#!/usr/bin/env python3
"""Renders a terminal screen captured with colours to a PNG.

    tmux capture-pane -e -p -t SESSION > screen.ans
    python3 docs/tools/term2png.py screen.ans docs/ward-overview.png

Reads the SGR colour and style codes tmux writes (16, 256 and 24-bit
colours, bold, reverse) and draws each cell in DejaVu Sans Mono, which
has the box-drawing, block and braille characters the dashboard uses.
Needs Pillow (`pip install pillow`) and fonts-dejavu-core.
"""

import re
import sys

from PIL import Image, ImageDraw, ImageFont

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
BOLD = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf"
SIZE = 15
FG, BG = (220, 220, 220), (24, 26, 30)
BASIC = [
    (0, 0, 0), (205, 49, 49), (13, 188, 121), (229, 229, 16),
    (36, 114, 200), (188, 63, 188), (17, 168, 205), (229, 229, 229),
    (102, 102, 102), (241, 76, 76), (35, 209, 139), (245, 245, 67),
    (59, 142, 234), (214, 112, 214), (41, 184, 219), (255, 255, 255),
]


def color256(n):
    if n < 16:
        return BASIC[n]
    if n < 232:
        n -= 16
        steps = [0, 95, 135, 175, 215, 255]
        return (steps[n // 36], steps[n // 6 % 6], steps[n % 6])
    level = 8 + (n - 232) * 10
    return (level, level, level)


def parse(text):
    """The screen as rows of (char, fg, bg, bold)."""
    rows = []
    fg, bg, bold, reverse = None, None, False, False
    for line in text.split("\n"):
        row = []
        for token in re.split(r"(\x1b\[[0-9;]*m)", line):
            if token.startswith("\x1b["):
                codes = [int(c) if c else 0 for c in token[2:-1].split(";")]
                i = 0
                while i < len(codes):
                    c = codes[i]
                    if c == 0:
                        fg, bg, bold, reverse = None, None, False, False
                    elif c == 1:
                        bold = True
                    elif c == 22:
                        bold = False
                    elif c == 7:
                        reverse = True
                    elif c == 27:
                        reverse = False
                    elif 30 <= c <= 37:
                        fg = BASIC[c - 30]
                    elif 90 <= c <= 97:
                        fg = BASIC[c - 90 + 8]
                    elif 40 <= c <= 47:
                        bg = BASIC[c - 40]
                    elif 100 <= c <= 107:
                        bg = BASIC[c - 100 + 8]
                    elif c == 39:
                        fg = None
                    elif c == 49:
                        bg = None
                    elif c in (38, 48) and i + 1 < len(codes):
                        if codes[i + 1] == 5 and i + 2 < len(codes):
                            rgb = color256(codes[i + 2])
                            i += 2
                        elif codes[i + 1] == 2 and i + 4 < len(codes):
                            rgb = tuple(codes[i + 2 : i + 5])
                            i += 4
                        else:
                            rgb = None
                        if c == 38:
                            fg = rgb
                        else:
                            bg = rgb
                    i += 1
                continue
            for ch in token:
                f, b = fg or FG, bg or BG
                if reverse:
                    f, b = b, f
                row.append((ch, f, b, bold))
        rows.append(row)
    while rows and not rows[-1]:
        rows.pop()
    return rows


def render(rows, out):
    font = ImageFont.truetype(FONT, SIZE)
    bold = ImageFont.truetype(BOLD, SIZE)
    cw = round(font.getlength("M"))
    # A cell as tall as the font, so box-drawing and block characters join.
    ascent, descent = font.getmetrics()
    ch = ascent + descent
    width = max(len(r) for r in rows)
    img = Image.new("RGB", (width * cw + 16, len(rows) * ch + 16), BG)
    draw = ImageDraw.Draw(img)
    for y, row in enumerate(rows):
        for x, (c, f, b, is_bold) in enumerate(row):
            left, top = 8 + x * cw, 8 + y * ch
            if b != BG:
                draw.rectangle([left, top, left + cw - 1, top + ch - 1], fill=b)
            if c != " ":
                draw.text((left, top), c, font=bold if is_bold else font, fill=f)
    img.save(out)


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as f:
        render(parse(f.read()), sys.argv[2])
