"""A small baseline JPEG encoder for tests: the layouts Pillow cannot write.

Pillow writes 4:4:4, 4:2:2 and 4:2:0 in one interleaved scan. Real cameras and tools also write
4:4:0 (h1v2), 4:1:1 (h4v1), non-interleaved multi-scan files and RGB (Adobe) JPEGs; this encoder
writes any of them, with the quantisation and Huffman tables harvested from a Pillow file of the
same quality (so the tables are the standard ones). Speed does not matter here, clarity does.
"""
from __future__ import annotations

import io
import struct

import numpy as np
from PIL import Image

from acir_core.jpeg.segments import parse_layout
from acir_core.jpeg.tables import ZIGZAG, Tables, apply_segment


def _harvest(quality: int) -> tuple[Tables, bytes, bytes]:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 200, 30)).save(buf, "JPEG", quality=quality, optimize=False)
    data = buf.getvalue()
    t = Tables()
    dqt, dht = b"", b""
    for seg in parse_layout(data).segments:
        if seg.marker in (0xDB, 0xC4):
            apply_segment(seg, data, t)
            chunk = data[seg.offset : seg.end]
            if seg.marker == 0xDB:
                dqt += chunk
            else:
                dht += chunk
    return t, dqt, dht


def _codes(table) -> dict[int, tuple[int, int]]:
    codes, code, k = {}, 0, 0
    for length in range(1, 17):
        for _ in range(table.counts[length - 1]):
            codes[table.symbols[k]] = (code, length)
            code += 1
            k += 1
        code <<= 1
    return codes


class _Bits:
    def __init__(self) -> None:
        self.out = bytearray()
        self.acc = 0
        self.n = 0

    def put(self, value: int, length: int) -> None:
        self.acc = (self.acc << length) | (value & ((1 << length) - 1))
        self.n += length
        while self.n >= 8:
            byte = (self.acc >> (self.n - 8)) & 0xFF
            self.out.append(byte)
            if byte == 0xFF:
                self.out.append(0)
            self.n -= 8

    def flush(self) -> None:
        if self.n:
            self.put((1 << (8 - self.n)) - 1, 8 - self.n)  # pad with 1-bits


_DCT = np.array([[np.sqrt((1 if u == 0 else 2) / 8) * np.cos((2 * x + 1) * u * np.pi / 16) for x in range(8)]
                 for u in range(8)])


def _category(v: int) -> int:
    return int(abs(v)).bit_length()


def _bits_of(v: int, s: int) -> int:
    return v if v >= 0 else v + (1 << s) - 1


def _put_block(bits, zz, diff: int, dc_codes, ac_codes) -> None:
    """One block's codes: its DC difference, then its AC run-lengths in zigzag order."""
    s = _category(diff)
    bits.put(*dc_codes[s])
    if s:
        bits.put(_bits_of(diff, s), s)
    run = 0
    for k in range(1, 64):
        a = int(zz[k])
        if a == 0:
            run += 1
            continue
        while run > 15:
            bits.put(*ac_codes[0xF0])
            run -= 16
        s = _category(a)
        bits.put(*ac_codes[(run << 4) | s])
        bits.put(_bits_of(a, s), s)
        run = 0
    if run:
        bits.put(*ac_codes[0x00])


def encode(rgb: np.ndarray, sampling: tuple[tuple[int, int], ...] = ((2, 2), (1, 1), (1, 1)), quality: int = 75,
           restart_interval: int = 0, separate_scans: bool = False, color: str = "ycbcr",
           component_ids: tuple[int, ...] = (1, 2, 3), gained: tuple[int, int] | None = None) -> bytes:
    """Encode ``rgb`` (H×W×3 uint8, or H×W for greyscale) as baseline JPEG with the given layout.
    ``gained`` (greyscale): (unit, DC difference) writes one block too many just before that
    unit, a copy of it whose DC difference is the one given, the predictor left as it was: what
    a silent gain decodes to (every later block of its restart interval that much off)."""
    t, dqt, dht = _harvest(quality)
    grey = rgb.ndim == 2
    if gained is not None and not grey:
        raise ValueError("gained: greyscale only")
    h_img, w_img = rgb.shape[:2]
    if grey:
        planes = [rgb.astype(np.float64)]
        sampling = sampling[:1]
    elif color == "rgb":
        planes = [rgb[..., i].astype(np.float64) for i in range(3)]
    else:
        r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
        planes = [0.299 * r + 0.587 * g + 0.114 * b, -0.168736 * r - 0.331264 * g + 0.5 * b + 128,
                  0.5 * r - 0.418688 * g - 0.081312 * b + 128]
    hmax, vmax = max(s[0] for s in sampling), max(s[1] for s in sampling)
    mcux, mcuy = -(-w_img // (8 * hmax)), -(-h_img // (8 * vmax))
    blocks = []
    for ci, (plane, (h, v)) in enumerate(zip(planes, sampling)):
        fx, fy = hmax // h, vmax // v
        cw, ch = -(-w_img * h // hmax), -(-h_img * v // vmax)
        padded = np.pad(plane, ((0, ch * fy - h_img), (0, cw * fx - w_img)), mode="edge")
        small = padded.reshape(ch, fy, cw, fx).mean(axis=(1, 3))
        if len(planes) == 1:
            rows, cols = -(-ch // 8), -(-cw // 8)
        else:
            rows, cols = mcuy * v, mcux * h
        full = np.pad(small, ((0, rows * 8 - ch), (0, cols * 8 - cw)), mode="edge") - 128
        q = t.qt[0 if ci == 0 else 1]
        coef = np.einsum("ux,rxcy,vy->rcuv", _DCT, full.reshape(rows, 8, cols, 8), _DCT)
        quant = np.round(coef.reshape(rows, cols, 64) / q).astype(int)
        blocks.append(quant)
    luma_dc, luma_ac = _codes(t.huff[(0, 0)]), _codes(t.huff[(1, 0)])
    chroma_dc, chroma_ac = _codes(t.huff[(0, 1)]), _codes(t.huff[(1, 1)])

    def scan(comps: list[int]) -> bytes:
        bits, pred = _Bits(), [0] * len(planes)
        out = bytearray()
        interleaved = len(comps) > 1
        if interleaved:
            units = [(my, mx) for my in range(mcuy) for mx in range(mcux)]
        else:  # T.81 A.2.2: only the blocks that cover the component's own samples
            h, v = sampling[comps[0]]
            comp_h, comp_w = -(-h_img * v // vmax), -(-w_img * h // hmax)
            rows, cols = -(-comp_h // 8), -(-comp_w // 8)
            units = [(r, c) for r in range(rows) for c in range(cols)]
        for n, (uy, ux) in enumerate(units):
            if restart_interval and n and n % restart_interval == 0:
                bits.flush()
                out += bits.out + bytes([0xFF, 0xD0 + (n // restart_interval - 1) % 8])
                bits = _Bits()
                pred = [0] * len(planes)
            for ci in comps:
                h, v = sampling[ci] if interleaved else (1, 1)
                dc_codes, ac_codes = (luma_dc, luma_ac) if ci == 0 else (chroma_dc, chroma_ac)
                cells = [(dy, dx) for dy in range(v) for dx in range(h)]
                if gained is not None and grey and n == gained[0]:
                    cells = [None] + cells  # the block a silent gain decodes: the next one, once more
                for cell in cells:
                    dy, dx = cell or (0, 0)
                    zz = blocks[ci][uy * v + dy, ux * h + dx][ZIGZAG]
                    if cell is None:
                        diff = gained[1]
                    else:
                        diff = int(zz[0]) - pred[ci]
                        pred[ci] = int(zz[0])
                    _put_block(bits, zz, diff, dc_codes, ac_codes)
        bits.flush()
        out += bits.out
        ns = len(comps)
        sos = bytes([ns]) + b"".join(bytes([component_ids[c], 0x00 if c == 0 else 0x11]) for c in comps) + b"\x00\x3f\x00"
        return b"\xff\xda" + struct.pack(">H", len(sos) + 2) + sos + bytes(out)

    nc = len(planes)
    sof = struct.pack(">BHHB", 8, h_img, w_img, nc) + b"".join(
        bytes([component_ids[i], (sampling[i][0] << 4) | sampling[i][1], 0 if i == 0 else 1]) for i in range(nc))
    head = b"\xff\xd8"
    if color == "rgb":
        head += b"\xff\xee\x00\x0eAdobe\x00\x64\x00\x00\x00\x00\x00"  # transform 0: RGB
    else:
        head += b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    head += dqt + b"\xff\xc0" + struct.pack(">H", len(sof) + 2) + sof + dht
    if restart_interval:
        head += b"\xff\xdd\x00\x04" + struct.pack(">H", restart_interval)
    body = b"".join(scan([c]) for c in range(nc)) if separate_scans else scan(list(range(nc)))
    return head + body + b"\xff\xd9"
