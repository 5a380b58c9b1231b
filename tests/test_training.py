"""GCA networks, losses, data, training loop, weights and tiled inference (CPU, small sizes)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from PIL import Image  # noqa: E402

from acir_core.errors import BadInput, InvalidParameter  # noqa: E402
from acir_core.bitflip import corrupt  # noqa: E402
from acir_core.jpeg.decoder import decode  # noqa: E402
from acir_core.thumbnail import with_thumbnail  # noqa: E402
from conftest import encode_jpeg, photo_like  # noqa: E402
from training.archs import GCAConfig, GCANet, MultiscaleDiscriminator  # noqa: E402
from training.checkpoint import DEFAULT_WEIGHTS, export_weights, load_model  # noqa: E402
from training.config import load_config  # noqa: E402
from training.data import CropSampler, OnTheFlyCrops, collate_crops, example_from_bytes  # noqa: E402
from training.infer import TileOptions, run_tiles  # noqa: E402
from training.losses import (charbonnier, discriminator_lsgan, edge_loss, feature_matching,  # noqa: E402
                             generator_lsgan, pyramid_charbonnier, sobel)
from training.train import masked_psnr, train  # noqa: E402

TINY = GCAConfig(ngf=8, n_res_global=1, n_res_local=1, fusion_ch=8, fusion_depth=2, levels=3)


def _damaged_example(seed: int = 3, ber: float = 3e-4):
    clean = encode_jpeg(photo_like(512, 256, seed=seed))
    jpeg = with_thumbnail(clean)
    bad = corrupt(jpeg, ber=ber, seed=seed).data
    ex = example_from_bytes(bad, jpeg, "test.jpg")
    assert ex is not None and ex.mask.any(), "the fixture must have damage"
    return ex


@pytest.fixture(scope="module")
def example():
    return _damaged_example()


def test_gca_forward_shapes_and_passthrough():
    torch.manual_seed(0)
    net = GCANet(TINY)
    sca = torch.rand(2, 3, 64, 96) * 2 - 1
    thumb = torch.rand(2, 3, 64, 96) * 2 - 1
    mask = (torch.rand(2, 1, 64, 96) > 0.8).float()
    r = net(sca, thumb, mask)
    assert r["out"].shape == (2, 3, 64, 96)
    assert [tuple(p.shape[-2:]) for p in r["pyramid"]] == [(64, 96), (32, 48), (16, 24)]
    keep = mask.expand_as(sca) == 0
    assert torch.equal(r["out"][keep], sca[keep])  # exact, not close
    with pytest.raises(ValueError):
        net(sca, thumb, None)


def test_gca_without_mask_changes_everything_allowed():
    net = GCANet(GCAConfig(ngf=8, n_res_global=1, n_res_local=1, fusion_ch=8, fusion_depth=2, use_mask=False))
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert net(x, x)["out"].shape == (1, 3, 32, 32)


def test_discriminator_returns_features_per_scale():
    d = MultiscaleDiscriminator(10, ndf=8, n_scales=2)
    outs = d(torch.rand(1, 10, 64, 64))
    assert len(outs) == 2 and len(outs[0]) == 5
    assert outs[1][-1].shape[-1] < outs[0][-1].shape[-1]


def test_losses_behave():
    x = torch.rand(2, 3, 32, 32)
    assert float(charbonnier(x, x)) == pytest.approx(1e-3, rel=1e-3)
    assert float(charbonnier(x, x + 0.5)) == pytest.approx(math.sqrt(0.25 + 1e-6), rel=1e-4)
    w = torch.zeros(2, 1, 32, 32)
    w[..., :4, :4] = 1
    y = x.clone()
    y[..., 8:, 8:] += 1  # differs only where the weight is 0
    assert float(charbonnier(x, y, w)) == pytest.approx(1e-3, rel=1e-3)
    assert float(sobel(torch.ones(1, 3, 8, 8)).abs().max()) == 0
    assert float(edge_loss(x, x)) == 0
    import torch.nn.functional as F

    pyr = [x] + [F.interpolate(x, size=(32 >> k, 32 >> k), mode="bicubic", antialias=True) for k in (1, 2)]
    assert float(pyramid_charbonnier(pyr, x)) == pytest.approx(3e-3, rel=1e-2)  # ε at each of 3 levels
    assert float(pyramid_charbonnier([x, x[..., ::2, ::2], x[..., ::4, ::4]], x)) > 0.1
    ones = [[torch.ones(1, 1, 4, 4)]]
    zeros = [[torch.zeros(1, 1, 4, 4)]]
    assert float(generator_lsgan(ones)) == 0 and float(generator_lsgan(zeros)) == 1
    assert float(discriminator_lsgan(ones, zeros)) == 0
    feats = [[torch.ones(1, 2, 4, 4), torch.ones(1, 1, 2, 2)]]
    assert float(feature_matching(feats, feats)) == 0


def test_crops_centre_on_damage_and_are_deterministic(example):
    sampler = CropSampler(size=64, per_image=6, damage_fraction=1.0)
    a = sampler(example, np.random.default_rng(5))
    b = sampler(example, np.random.default_rng(5))
    assert all(torch.equal(x["sca"], y["sca"]) for x, y in zip(a, b))
    assert all(float(c["mask"].sum()) > 0 for c in a)
    batch = collate_crops([a, b])
    assert batch["sca"].shape == (12, 3, 64, 64) and batch["mask"].shape == (12, 1, 64, 64)
    assert float(batch["sca"].min()) >= -1 and float(batch["sca"].max()) <= 1


def test_tiled_restore_keeps_pixels_outside_mask_exactly(example):
    torch.manual_seed(1)
    net = GCANet(TINY).eval()
    for p in net.parameters():  # a non-trivial network, so the test could fail
        p.data.add_(torch.randn_like(p) * 0.05)
    out = run_tiles(net, example.sca, example.thumb_up, example.mask, options=TileOptions(tile=128, overlap=32, batch=3))
    assert out.shape == example.sca.shape and out.dtype == np.uint8
    outside = ~example.mask
    assert np.array_equal(out[outside], example.sca[outside])
    assert not np.array_equal(out[example.mask], example.sca[example.mask])
    whole = run_tiles(net, example.sca, example.thumb_up, example.mask, options=TileOptions(tile=1024, overlap=0))
    diff = np.abs(whole.astype(int) - out.astype(int))[example.mask]
    assert diff.mean() < 4  # tiling with blended overlaps ~ one pass over the whole image


def test_restore_without_damage_is_identity(example):
    from dataclasses import replace

    ex = replace(example, mask=np.zeros_like(example.mask))
    assert np.array_equal(run_tiles(GCANet(TINY).eval(), ex.sca, ex.thumb_up, ex.mask), ex.sca)


def test_export_and_load_weights_roundtrip(tmp_path):
    net = GCANet(TINY)
    path = tmp_path / "w.pt"
    size = export_weights(net, str(path), {"step": 7})
    assert size == path.stat().st_size
    model, meta = load_model(path)
    assert meta["step"] == 7 and model.config == TINY
    for (k, a), (_, b) in zip(net.state_dict().items(), model.state_dict().items()):
        assert torch.allclose(a.float(), b, atol=1e-2 * (1 + float(a.abs().max()))), k
    raw = torch.load(path, weights_only=True)  # plain tensors and primitives only
    assert raw["format"] == "acir-gca"


@pytest.mark.parametrize("content", [b"not a torch file", b""])
def test_load_model_rejects_bad_files(tmp_path, content):
    p = tmp_path / "bad.pt"
    p.write_bytes(content)
    with pytest.raises(BadInput, match="bad.pt"):
        load_model(p)
    with pytest.raises(BadInput, match="no such"):
        load_model(tmp_path / "missing.pt")


def test_shipped_weights_load_and_fit_budget():
    """On a real photo (the repository's example, 1024x512, three damage seeds), the shipped
    network improves on the thumbnail fill where it works and changes nothing else. (The synthetic
    test photos are not a fair judge of a network trained on photographs: gca-v2 is worse than the
    fill on the one the other tests use, gca-v1 better.)"""
    from conftest import REPO

    assert DEFAULT_WEIGHTS.exists(), "training/weights/gca-v2.pt must ship with the package"
    assert DEFAULT_WEIGHTS.stat().st_size <= 16 * 2**20
    model, meta = load_model()
    jpeg = with_thumbnail((REPO / "examples" / "andrew-ridley-54228.jpg").read_bytes())
    err_fill = err_gca = 0.0
    for seed in (1, 2, 3):
        ex = example_from_bytes(corrupt(jpeg, ber=1e-4, seed=seed).data, jpeg, "example.jpg")
        out = run_tiles(model, ex.sca, ex.thumb_up, ex.mask)
        assert ex.mask.any() and np.array_equal(out[~ex.mask], ex.sca[~ex.mask])
        clean = ex.clean.astype(float)
        err_fill += np.mean((ex.sca[ex.mask] - clean[ex.mask]) ** 2)
        err_gca += np.mean((out[ex.mask] - clean[ex.mask]) ** 2)
    # measured: 0.93 (gca-v2), 0.89 (gca-v1) on the old masks; 0.973 (gca-v2) since the masks
    # follow the damage (issue 22): what is left in them is harder, and the network was trained
    # on the old ones
    assert err_gca < 0.98 * err_fill


def test_config_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[model]\nngf = 8\nwidth = 3\n[data]\npath='x'\n")
    with pytest.raises(InvalidParameter, match="unknown keys: width"):
        load_config(str(bad))
    bad.write_text("[model\n")
    with pytest.raises(BadInput, match="not valid TOML"):
        load_config(str(bad))
    with pytest.raises(BadInput, match="cannot read"):
        load_config(str(tmp_path / "none.toml"))


def _write_config(tmp_path: Path, photos: str, steps: int, gan: float) -> Path:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"""
[model]
ngf = 8
n_res_global = 1
n_res_local = 1
fusion_ch = 8
fusion_depth = 2
[loss]
gan = {gan}
[data]
source = "onthefly"
path = "{photos}"
size = "256x128"
bers = [3e-4]
crop = 64
crops_per_image = 2
images_per_batch = 2
workers = 0
[train]
out = "{tmp_path / 'run'}"
steps = {steps}
checkpoint_every = 2
log_every = 1
seed = 3
""")
    return cfg


def test_train_checkpoints_and_resumes(tmp_path):
    from dataclasses import replace

    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        Image.fromarray(photo_like(320, 160, seed=10 + i)).save(photos / f"p{i}.jpg", quality=95)
    cfg = load_config(str(_write_config(tmp_path, f"{photos}/*.jpg", 2, gan=1.0)))
    r = train(cfg, progress=False)
    assert r.steps == 2 and math.isfinite(r.last_loss)
    run = tmp_path / "run"
    assert (run / "last.pt").exists() and (run / "weights-last.pt").exists() and (run / "log.csv").exists()
    r2 = train(replace(cfg, train=replace(cfg.train, steps=4)), progress=False)
    assert r2.steps == 4  # resumed at 2, not restarted
    rows = (run / "log.csv").read_text().splitlines()
    assert rows[0].startswith("step,") and rows[-1].startswith("4,")
    model, meta = load_model(run / "weights-last.pt")
    assert meta["step"] == 4


def test_train_starts_from_given_weights_and_refuses_what_cannot_train(tmp_path):
    from dataclasses import replace

    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):  # a batch takes two photos
        Image.fromarray(photo_like(320, 160, seed=12 + i)).save(photos / f"p{i}.jpg", quality=95)
    cfg = load_config(str(_write_config(tmp_path, f"{photos}/*.jpg", 1, gan=0.0)))
    start = GCANet(cfg.model)
    with torch.no_grad():
        for p in start.parameters():
            p.fill_(0.125)  # exact in bf16
    export_weights(start, str(tmp_path / "start.pt"), {})
    zero_lr = replace(cfg, train=replace(cfg.train, steps=1, lr=0.0, init_weights=str(tmp_path / "start.pt")))
    train(zero_lr, progress=False)
    trained, _ = load_model(tmp_path / "run" / "weights-last.pt")
    assert all(torch.all(p == 0.125) for p in trained.parameters())  # started there (and lr 0 kept it)
    other = replace(zero_lr, model=replace(cfg.model, ngf=4),
                    train=replace(zero_lr.train, out=str(tmp_path / "run2")))
    with pytest.raises(InvalidParameter, match="init_weights"):
        train(other, progress=False)
    (photos / "p1.jpg").unlink()  # one photo, two a step: an error, not a loop without end
    with pytest.raises(InvalidParameter, match="fewer than one step takes"):
        train(replace(zero_lr, train=replace(zero_lr.train, out=str(tmp_path / "run3"))), progress=False)


def test_onthefly_samples_are_seeded(tmp_path):
    from acir_engine.samples import Config

    p = tmp_path / "a.png"
    Image.fromarray(photo_like(320, 160, seed=4)).save(p)
    ds = OnTheFlyCrops([str(p)], (3e-4,), CropSampler(size=64, per_image=2), seed=9, config=Config(width=256, height=128))
    a, b = ds[0], ds[0]
    assert torch.equal(a[0]["sca"], b[0]["sca"])
    ds.set_epoch(1)
    c = ds[0]
    assert not torch.equal(a[0]["sca"], c[0]["sca"]) or not torch.equal(a[0]["mask"], c[0]["mask"])


def test_masked_psnr():
    clean = torch.zeros(1, 3, 8, 8)
    out = clean.clone()
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., :2, :2] = 1
    out[..., :2, :2] += 2 / 127.5  # 2 levels of 8-bit in [-1, 1] units
    assert masked_psnr(out, clean, mask) == pytest.approx(10 * math.log10(255**2 / 4), abs=1e-3)


def test_crop_cache_roundtrip(tmp_path, example):
    from training.data.cache import CachedCrops, build_cache

    class One(torch.utils.data.Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            return CropSampler(size=64, per_image=3)(example, np.random.default_rng(i))

    path = str(tmp_path / "c.npz")
    assert build_cache(One(), path) == 6
    ds = CachedCrops(path, seed=1)
    assert len(ds) == 6
    crop = ds[0][0]
    assert crop["sca"].shape == (3, 64, 64) and crop["mask"].shape == (1, 64, 64)
    ref = One()[0][0]
    flips = [torch.flip(ref["sca"], d) for d in ([], [2], [1], [1, 2])]
    assert any(torch.allclose(crop["sca"], f, atol=1 / 127) for f in flips)  # uint8 round trip, maybe flipped


def test_evaluate_from_photos_and_cli(tmp_path, capsys):
    from acir_cli.app import main
    from training.evaluate import evaluate_dataset

    Image.fromarray(photo_like(320, 160, seed=8)).save(tmp_path / "a.jpg", quality=95)
    net = GCANet(TINY).eval()
    rep = evaluate_dataset(str(tmp_path / "*.jpg"), net, bers=(3e-4,), seeds=2, progress=False, size=(320, 160))
    assert rep.counts == {"0.0003": 2} and rep.unchanged_outside_mask
    t = rep.table["0.0003"]
    assert set(t) == {"robust", "paper_sca", "aware_sca", "aware_fill", "gca"}
    assert list(t["gca"]) == ["80x40", "160x80", "320x160"]  # the paper's three scales: 1/4, 1/2, 1
    assert t["aware_fill"]["320x160"][0] > t["robust"]["320x160"][0]
    w = tmp_path / "w.pt"
    export_weights(net, str(w), {})
    rc = main(["evaluate", "--checkpoint", str(w), "--data", str(tmp_path / "*.jpg"), "--bers", "3e-4",
               "--seeds", "1", "--size", "320x160", "--json", str(tmp_path / "r.json")])
    assert rc == 0
    assert "| gca |" in capsys.readouterr().out
    assert main(["evaluate", "--checkpoint", str(tmp_path / "nope.pt"), "--data", str(tmp_path)]) == 1


def test_onthefly_styles_make_each_photo_once_per_style(tmp_path):
    """A pipeline frame and a camera-like file (own size, q95, letterboxed camera thumbnail) from
    the same photo; a style's own BERs are used."""
    from acir_core.thumbnail import extract_thumbnail
    from acir_engine.samples import Config

    p = tmp_path / "a.png"
    Image.fromarray(photo_like(384, 192, seed=5)).save(p)
    styles = (Config(width=256, height=128, bers=(3e-4,)),
              Config(keep_size=True, quality=95, thumbnail_style="camera", bers=(2e-4, 4e-4)))
    ds = OnTheFlyCrops([str(p)], (1e-9,), CropSampler(size=64, per_image=2), seed=1, styles=styles, ber_range=True)
    assert len(ds) == 2
    frame, camera = ds._prepare(0), ds._prepare(1)
    assert decode(frame.jpeg, "strict").rgb.shape == (128, 256, 3)
    assert decode(camera.jpeg, "strict").rgb.shape == (192, 384, 3)
    thumb = extract_thumbnail(camera.jpeg).rgb
    assert thumb.shape[1] * 3 == thumb.shape[0] * 4 and thumb[:4].max() < 40  # 4:3, black bars
    assert extract_thumbnail(frame.jpeg).rgb.shape == (80, 160, 3)
    assert all(c["sca"].shape == (3, 64, 64) for c in ds[0] + ds[1])
    assert ds[1][0]["mask"].any() or ds[1][1]["mask"].any()  # BER 2e-4..4e-4, not the 1e-9 given


def test_styles_are_checked_where_they_are_written(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[data]\nsource = 'onthefly'\npath = 'x/*.jpg'\n[[data.styles]]\nquality = 95\nsharpness = 2\n")
    with pytest.raises(InvalidParameter, match=r"data.styles #1.*sharpness"):
        load_config(str(cfg))
    cfg.write_text("[data]\nsource = 'onthefly'\npath = 'x/*.jpg'\n[[data.styles]]\nthumbnail_style = 'phone'\n")
    with pytest.raises(InvalidParameter, match="thumbnail style"):
        load_config(str(cfg))


def test_example_of_an_intact_file_has_nothing_to_restore():
    jpeg = with_thumbnail(encode_jpeg(photo_like(256, 128, seed=8)))
    ex = example_from_bytes(jpeg, jpeg, "intact.jpg")
    assert ex is not None and not ex.mask.any() and np.array_equal(ex.sca, ex.clean)
    assert ex.thumb_up.shape == ex.sca.shape
