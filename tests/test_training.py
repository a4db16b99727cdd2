"""The dataset renderer and the GAN trainer behind the embedded generator (tiny configurations)."""
from __future__ import annotations

import numpy as np
import torch

from dragedit.stylegan2 import GeneratorConfig, load_generator, save_generator
from dragedit.stylegan2.training import CHECKPOINT, TrainConfig, Trainer
from dragedit.stylegan2.portraits import render_batch, render_face


def test_renderer_is_deterministic_and_varied():
    a, b = render_face(11, 64), render_face(11, 64)
    assert a.shape == (64, 64, 3) and a.dtype == np.uint8 and np.array_equal(a, b)
    batch = render_batch(range(8), 64)
    assert len({im.tobytes() for im in batch}) == 8
    # Faces are centred: the centre of the image differs from the corners more than corners differ.
    assert batch[:, 24:40, 24:40].std() > 10


def _tiny_cfg() -> TrainConfig:
    g = GeneratorConfig(z_dim=16, w_dim=16, img_resolution=16, mapping_layers=2, channel_base=256, channel_max=32)
    return TrainConfig(generator=g, batch=4, r1_interval=2, pl_weight=2.0, pl_interval=2, ema_rampup=None)


def _data(seeds):
    return render_batch(seeds, 16)


def test_training_resumes_exactly(tmp_path):
    straight = Trainer(_tiny_cfg(), _data, tmp_path / "a")
    stats = [straight.train_step() for _ in range(4)]
    assert all(np.isfinite(v) for s in stats for v in s.values())
    first = Trainer(_tiny_cfg(), _data, tmp_path / "b")
    for _ in range(2):
        first.train_step()
    first.save()
    resumed = Trainer(_tiny_cfg(), _data, tmp_path / "b")
    assert resumed.load(tmp_path / "b" / CHECKPOINT) and resumed.images_seen == 8
    for _ in range(2):
        resumed.train_step()
    for key in ("G", "D", "G_ema"):
        a, b = straight.state()[key], resumed.state()[key]
        assert all(torch.equal(a[k], b[k]) for k in a), key


def test_training_changes_weights_and_exports(tmp_path):
    tr = Trainer(_tiny_cfg(), _data, tmp_path)
    before = {k: v.clone() for k, v in tr.G_ema.state_dict().items()}
    tr.fit(kimg=0.012, snap_kimg=0.008, progress=False)
    assert (tmp_path / CHECKPOINT).exists() and tr.images_seen == 12
    after = tr.G_ema.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    path = save_generator(tr.G_ema, tmp_path / "g.safetensors", provenance={"kimg": tr.kimg}, dtype=torch.float16)
    G, info = load_generator(path, with_info=True)
    assert info["provenance"]["kimg"] == tr.kimg and G.img_resolution == 16
    with torch.no_grad():
        img = G(torch.randn(2, 16))
    assert img.shape == (2, 3, 16, 16) and torch.isfinite(img).all()
    grid = tr.sample_grid([0, 1])
    assert grid.shape == (2, 16, 16, 3)
