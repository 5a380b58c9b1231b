"""Entropy-code quantised coefficient planes as one baseline Huffman scan (ITU T.81 Annex F.1).

The repaired JPEG keeps the photo's own coefficients, so what is written here must decode to
exactly those values: two passes over the blocks, the first counting symbols for optimised
Huffman tables (T.81 Annex K.2, code lengths limited to 16 bits), the second emitting the codes.
Restart markers are written at the photo's own interval. Values a baseline stream cannot carry
(AC beyond ±1023, DC outside −1024..1023: only garbage decoded from damaged bits has them) are
clamped and counted.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from acir_core.jpeg.tables import ZIGZAG, Frame

DC_LIMIT = (-1024, 1023)
AC_LIMIT = 1023


@dataclass(frozen=True, kw_only=True)
class HuffmanSpec:
    """One table as DHT writes it: ``counts[i]`` codes of length i+1, ``symbols`` in code order."""

    counts: tuple[int, ...]
    symbols: bytes

    def codes(self) -> tuple[np.ndarray, np.ndarray]:
        """(code, length) per symbol 0..255 (length 0: the symbol has no code)."""
        code = np.zeros(256, np.int64)
        size = np.zeros(256, np.int64)
        c, k = 0, 0
        for length in range(1, 17):
            for _ in range(self.counts[length - 1]):
                code[self.symbols[k]] = c
                size[self.symbols[k]] = length
                c += 1
                k += 1
            c <<= 1
        return code, size


@dataclass(frozen=True, kw_only=True, eq=False)
class EncodedScan:
    """One scan's entropy-coded bytes (stuffed, with restart markers), the tables it needs
    (``dc[slot]``, ``ac[slot]``), the table slots of each component and how many blocks had
    values clamped into the baseline range."""

    data: bytes
    dc: tuple[HuffmanSpec, ...]
    ac: tuple[HuffmanSpec, ...]
    slots: tuple[int, ...]
    clamped_blocks: int


def optimal_table(freq: np.ndarray) -> HuffmanSpec:
    """Code lengths for symbol counts ``freq`` (256) as T.81 Annex K.2 builds them: Huffman's
    merge, with a reserved symbol so no code is all ones, then lengths over 16 folded back."""
    f = np.zeros(257, np.int64)
    f[:256] = freq
    f[256] = 1
    size = np.zeros(257, np.int64)
    others = np.full(257, -1, np.int64)
    big = np.iinfo(np.int64).max
    while True:
        live = np.where(f > 0, f, big)
        c1 = int(np.flatnonzero(live == live.min())[-1])  # ties: the largest symbol, as K.2 does
        live[c1] = big
        if live.min() == big:
            break
        c2 = int(np.flatnonzero(live == live.min())[-1])
        f[c1] += f[c2]
        f[c2] = 0
        for c in (c1, c2):
            size[c] += 1
            while others[c] >= 0:
                c = others[c]
                size[c] += 1
        c = c1
        while others[c] >= 0:
            c = others[c]
        others[c] = c2
    bits = np.bincount(size[size > 0], minlength=33).astype(np.int64)
    for i in range(len(bits) - 1, 16, -1):  # Figure K.3: fold codes longer than 16 bits
        while bits[i] > 0:
            j = i - 2
            while bits[j] == 0:
                j -= 1
            bits[i] -= 2
            bits[i - 1] += 1
            bits[j + 1] += 2
            bits[j] -= 1
    i = 16
    while bits[i] == 0:
        i -= 1
    bits[i] -= 1  # the reserved symbol goes
    order = sorted((int(size[s]), s) for s in range(256) if size[s] > 0)
    return HuffmanSpec(counts=tuple(int(b) for b in bits[1:17]), symbols=bytes(s for _, s in order))


@njit(cache=True)
def _nbits(v):
    a = -v if v < 0 else v
    n = 0
    while a:
        n += 1
        a >>= 1
    return n


@njit(cache=True)
def _put(acc, nacc, value, nb, out, n):
    """Append ``nb`` bits of ``value`` and write out every whole byte (0xFF gets its stuffed 0x00)."""
    acc = (acc << nb) | (value & ((1 << nb) - 1))
    nacc += nb
    while nacc >= 8:
        b = (acc >> (nacc - 8)) & 0xFF
        out[n] = b
        n += 1
        if b == 0xFF:
            out[n] = 0
            n += 1
        nacc -= 8
    acc &= (1 << nacc) - 1
    return acc, nacc, n


@njit(cache=True)
def _symbol(acc, nacc, n, out, freq, codes, sizes, t, sym, value, nb, emit):
    """One symbol of table ``t`` and its ``nb`` value bits: written (emit), or counted into
    ``freq`` with ``n`` counting value bits."""
    if emit:
        acc, nacc, n = _put(acc, nacc, codes[t, sym], sizes[t, sym], out, n)
        acc, nacc, n = _put(acc, nacc, value if value >= 0 else value - 1, nb, out, n)
    else:
        freq[t, sym] += 1
        n += nb
    return acc, nacc, n


@njit(cache=True)
def _code_blocks(coef, order, comp, mcu_of, restart, dct, act, zz, codes, sizes, freq, out, emit):
    """Pass over the blocks in scan order: count symbols into ``freq`` (emit False) or write the
    codes into ``out`` (emit True). ``codes``/``sizes``: (4, 256), tables 0-1 DC and 2-3 AC.
    Returns bytes written (emit) or value bits counted, and the number of clamped blocks."""
    pred = np.zeros(8, np.int64)
    acc = np.int64(0)
    nacc = 0
    n = 0
    clamped = 0
    last_mcu = -1
    interval = 0
    for i in range(order.shape[0]):
        m = mcu_of[i]
        if m != last_mcu:
            if restart > 0 and m > 0 and m % restart == 0:
                if emit:  # pad to a byte with ones, then RSTn
                    if nacc > 0:
                        acc, nacc, n = _put(acc, nacc, 0xFF, 8 - nacc, out, n)
                    out[n] = 0xFF
                    out[n + 1] = 0xD0 + (interval & 7)
                    n += 2
                interval += 1
                pred[:] = 0
            last_mcu = m
        c = comp[i]
        blk = coef[order[i]]
        hit = False
        dc = np.int64(blk[0])
        if dc < DC_LIMIT[0] or dc > DC_LIMIT[1]:
            dc = min(max(dc, DC_LIMIT[0]), DC_LIMIT[1])
            hit = True
        diff = dc - pred[c]
        pred[c] = dc
        t = dct[c]
        nb = _nbits(diff)
        acc, nacc, n = _symbol(acc, nacc, n, out, freq, codes, sizes, t, nb, diff, nb, emit)
        t = act[c] + 2
        run = 0
        for k in range(1, 64):
            v = np.int64(blk[zz[k]])
            if v == 0:
                run += 1
                continue
            if v > AC_LIMIT or v < -AC_LIMIT:
                v = min(max(v, -AC_LIMIT), AC_LIMIT)
                hit = True
            while run > 15:  # ZRL: sixteen zeros
                acc, nacc, n = _symbol(acc, nacc, n, out, freq, codes, sizes, t, 0xF0, 0, 0, emit)
                run -= 16
            nb = _nbits(v)
            acc, nacc, n = _symbol(acc, nacc, n, out, freq, codes, sizes, t, (run << 4) | nb, v, nb, emit)
            run = 0
        if run > 0:  # EOB
            acc, nacc, n = _symbol(acc, nacc, n, out, freq, codes, sizes, t, 0, 0, 0, emit)
        if hit:
            clamped += 1
    if emit and nacc > 0:
        acc, nacc, n = _put(acc, nacc, 0xFF, 8 - nacc, out, n)
    return n, clamped


def scan_order(frame: Frame, grids: tuple[tuple[int, int], ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Block indices (into the components' planes stacked row-major), their components and MCU
    numbers in the order one scan over all components codes them (T.81 A.2)."""
    bases = np.cumsum([0] + [r * c for r, c in grids])[:-1]
    if len(frame.components) == 1:
        rows, cols = grids[0]
        n = rows * cols
        return np.arange(n, dtype=np.int64), np.zeros(n, np.int64), np.arange(n, dtype=np.int64)
    my, mx = np.meshgrid(np.arange(frame.mcu_rows), np.arange(frame.mcu_cols), indexing="ij")
    parts, comps = [], []
    for ci, comp in enumerate(frame.components):
        cols = grids[ci][1]
        for dy in range(comp.v):
            for dx in range(comp.h):
                parts.append(bases[ci] + (my * comp.v + dy) * cols + mx * comp.h + dx)
                comps.append(ci)
    order = np.stack([p.reshape(-1) for p in parts], axis=1)  # (MCUs, blocks per MCU)
    comp = np.broadcast_to(np.array(comps, np.int64), order.shape)
    mcu = np.broadcast_to(np.arange(order.shape[0], dtype=np.int64)[:, None], order.shape)
    return order.reshape(-1).astype(np.int64), comp.reshape(-1).copy(), mcu.reshape(-1).copy()


def encode_scan(frame: Frame, coefficients: tuple[np.ndarray, ...], restart_interval: int = 0) -> EncodedScan:
    """The coefficient planes (natural order, as the decoder gives them) as one scan over all
    components, with optimised tables: slot 0 for the first component, slot 1 shared by the others."""
    grids = tuple(c.shape[:2] for c in coefficients)
    flat = np.ascontiguousarray(np.concatenate([c.reshape(-1, 64) for c in coefficients]), dtype=np.int16)
    order, comp, mcu = scan_order(frame, grids)
    slots = tuple(0 if ci == 0 else 1 for ci in range(len(frame.components)))
    tab = np.array(slots + (0,) * (8 - len(slots)), np.int64)
    zz = ZIGZAG.astype(np.int64)
    freq = np.zeros((4, 256), np.int64)
    codes = np.zeros((4, 256), np.int64)
    sizes = np.zeros((4, 256), np.int64)
    value_bits, _ = _code_blocks(flat, order, comp, mcu, restart_interval, tab, tab, zz, codes, sizes, freq,
                                 np.zeros(1, np.uint8), False)
    used = sorted(set(slots))
    specs = {t: optimal_table(freq[t]) for t in range(4) if (t % 2) in used}
    for t, spec in specs.items():
        codes[t], sizes[t] = spec.codes()
    bits = int((freq * sizes).sum()) + int(value_bits)
    n_rst = int(mcu[-1]) // restart_interval if restart_interval and mcu.size else 0
    out = np.empty(2 * (bits // 8 + n_rst) + 2 * n_rst + 16, np.uint8)  # every byte may be stuffed
    n, clamped = _code_blocks(flat, order, comp, mcu, restart_interval, tab, tab, zz, codes, sizes, freq, out, True)
    return EncodedScan(data=out[:n].tobytes(), dc=tuple(specs[s] for s in used), ac=tuple(specs[2 + s] for s in used),
                       slots=slots, clamped_blocks=int(clamped))
