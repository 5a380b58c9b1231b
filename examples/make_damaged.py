"""Make examples/damaged/ with our own dataset pipeline: the bundled photo, encrypted with
aes-cbc-essiv:sha256, hit by bit errors at three BERs, decrypted — what a failing encrypted phone
would hand back. Deterministic: rerunning writes the same bytes.

    python examples/make_damaged.py
"""
from __future__ import annotations

from pathlib import Path

from pipelines.dataset import iter_rows
from pipelines.generate import run

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "andrew-ridley-54228.jpg"
OUT = HERE / "damaged"


def main() -> None:
    run(["--input", str(SOURCE), "--output", "memory://acir-examples", "--keep-size", "--ber", "2e-5", "5e-5", "2e-4",
         "--seed", "11", "--images", "none", "--splits", "example=1", "--shards", "1"])
    OUT.mkdir(exist_ok=True)
    for row in iter_rows("memory://acir-examples", columns=["ber", "corrupted_jpeg", "n_flips", "resyncs"]):
        name = OUT / f"andrew-ridley-ber{row['ber']:.0e}.jpg"
        name.write_bytes(row["corrupted_jpeg"])
        print(f"{name.relative_to(HERE.parent)}: {row['n_flips']} flipped bits, {row['resyncs']} resyncs")
    (OUT / "andrew-ridley-intact.jpg").write_bytes(SOURCE.read_bytes())  # restore copies it untouched


if __name__ == "__main__":
    main()
