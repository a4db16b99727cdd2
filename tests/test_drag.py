"""DragGAN loop: the official arithmetic, exact sparse sampling, real motion, masks, chaining."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dragedit.draggan import DragConfig, drag
from dragedit.draggan.sampling import bilinear_at, upsampled_at
from tests.synthetic_generator import BlobGenerator


def _ref_points(ref_json):
    d = ref_json["drag"]
    return ([[p[1], p[0]] for p in d["points_row_col"]], [[p[1], p[0]] for p in d["targets_row_col"]])


def test_official_trajectory_matches(ref_generator, ref_io, ref_json):
    d = ref_json["drag"]
    handles, targets = _ref_points(ref_json)
    ws = torch.from_numpy(ref_io["ws_psi07"][:1])
    want = [s["loss"] for s in d["trajectory"]]
    cfg = DragConfig.official(max_steps=len(want), lr=d["lr"], r1=d["r1"], r2=d["r2"],
                              feature_block=d["feature_idx"], optimize_rows=d["optimized_ws_layers"])
    res = drag(ref_generator, ws, handles, targets, config=cfg)
    got = [s["loss"] for s in res.trajectory[: len(want)]]
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
    np.testing.assert_allclose(res.ws.numpy(), ref_io["drag_w_final"], atol=1e-4, rtol=0)
    for step, s in zip(res.trajectory, d["trajectory"]):
        assert [[p[1], p[0]] for p in step["points"]] == s["points"]
    # Rows past the optimised ones never change.
    assert torch.equal(res.ws[:, 6:], ws[:, 6:])
    assert not torch.equal(res.ws[:, :6], ws[:, :6])


def test_upsampled_sampling_is_exact():
    torch.manual_seed(0)
    feat = torch.randn(1, 5, 16, 16)
    full = F.interpolate(feat, [64, 64], mode="bilinear")
    rows, cols = torch.randint(0, 64, (200,)), torch.randint(0, 64, (200,))
    rows[:4], cols[:4] = torch.tensor([0, 63, 0, 63]), torch.tensor([0, 63, 63, 0])
    torch.testing.assert_close(upsampled_at(feat, rows, cols, (64, 64)), full[0][:, rows, cols], atol=1e-6, rtol=0)
    y = torch.rand(300) * 66 - 1  # includes points past the border (zero padding)
    x = torch.rand(300) * 66 - 1
    grid = torch.stack([x / 63 * 2 - 1, y / 63 * 2 - 1], -1)[None, None]
    want = F.grid_sample(full, grid, align_corners=True)[0, :, 0]
    torch.testing.assert_close(bilinear_at(feat, y, x, (64, 64)), want, atol=1e-5, rtol=0)


@pytest.mark.parametrize("block", [3, 4])
def test_sparse_equals_full_resize(ref_generator, ref_io, block):
    ws = torch.from_numpy(ref_io["ws_psi07"][1:])
    mask = torch.zeros(128, 128)
    mask[20:80, 30:100] = 1
    out = {}
    for sparse in (True, False):
        cfg = DragConfig(max_steps=5, feature_block=block, r1=12, sparse=sparse, tracking="l1")
        out[sparse] = drag(ref_generator, ws, [[50, 40], [70, 60]], [[58, 44], [64, 70]], mask=mask, config=cfg)
    a, b = out[True], out[False]
    assert [s["points"] for s in a.trajectory] == [s["points"] for s in b.trajectory]
    np.testing.assert_allclose([s["loss"] for s in a.trajectory[:-1]], [s["loss"] for s in b.trajectory[:-1]],
                               rtol=1e-4, atol=1e-7)  # float summation order only
    torch.testing.assert_close(a.ws, b.ws, atol=1e-5, rtol=0)


def test_full_synthesis_mode_gives_same_result(ref_generator, ref_io):
    ws = torch.from_numpy(ref_io["ws_psi07"][:1])
    kw = dict(max_steps=3, tracking="l2")
    a = drag(ref_generator, ws, [[50, 40]], [[60, 46]], config=DragConfig(**kw))
    b = drag(ref_generator, ws, [[50, 40]], [[60, 46]], config=DragConfig(full_synthesis=True, sparse=False, **kw))
    torch.testing.assert_close(a.ws, b.ws, atol=1e-6, rtol=0)
    torch.testing.assert_close(a.image, b.image, atol=1e-5, rtol=0)


@pytest.mark.slow
@pytest.mark.parametrize("tracking", ["l1", "l2"])
def test_handles_reach_targets_on_structured_generator(tracking):
    G = BlobGenerator()
    ws = torch.zeros(1, G.num_ws, G.w_dim)
    start, target = [32.0, 32.0], [40.0, 27.0]
    res = drag(G, ws, [start], [target], config=DragConfig(lr=0.05, r1=24, r2=48, max_steps=200, tracking=tracking))
    assert res.stopped_by == "distance" and res.steps < 200
    assert res.mean_distance <= 1.0
    centre = G.synthesis.centre(res.ws)[0]  # the blob really moved (row, col)
    assert abs(float(centre[1]) - target[0]) < 1.5 and abs(float(centre[0]) - target[1]) < 1.5
    d = [s["mean_distance"] for s in res.trajectory]
    assert d[-1] < d[0] - 7


def test_stop_rule_distance_depends_on_handle_count():
    cfg = DragConfig()
    assert cfg.stop_distance_for(5, 512) == 1 and cfg.stop_distance_for(6, 512) == 2
    assert DragConfig.official().stop_distance_for(1, 1024) == 4
    G = BlobGenerator()
    res = drag(G, torch.zeros(1, 8, 4), [[32, 32]], [[32.6, 32.4]], config=DragConfig(max_steps=50))
    assert res.steps == 0 and res.stopped_by == "distance"


def test_mask_keeps_outside_region(ref_generator, ref_io):
    ws = torch.from_numpy(ref_io["ws_psi07"][:1])
    mask = torch.zeros(128, 128)
    mask[30:70, 30:70] = 1
    img0 = ref_generator.synthesis(ws)
    changes = {}
    for name, m in (("free", None), ("masked", mask)):
        r = drag(ref_generator, ws, [[50, 50]], [[60, 56]], mask=m, config=DragConfig(max_steps=15, lr=0.01))
        diff = (r.image - img0).abs().mean(1)[0]
        changes[name] = float(diff[mask == 0].mean())
    assert changes["masked"] < 0.7 * changes["free"], changes


@pytest.mark.slow
def test_chained_edit_starts_from_previous_latent():
    G = BlobGenerator()
    ws = torch.zeros(1, G.num_ws, G.w_dim)
    cfg = DragConfig(lr=0.05, r1=24, r2=48, max_steps=200)
    first = drag(G, ws, [[32, 32]], [[38, 32]], config=cfg)
    second = drag(G, first.ws, first.points, [[38, 38]], config=cfg)
    assert second.trajectory[0]["points"] == first.points
    assert second.stopped_by == "distance" and second.mean_distance <= 1
    centre = G.synthesis.centre(second.ws)[0]
    assert abs(float(centre[0]) - 38) < 1.5 and abs(float(centre[1]) - 38) < 1.5


def test_callback_previews_and_stops(ref_generator, ref_io):
    ws = torch.from_numpy(ref_io["ws_psi07"][:1])
    seen = []

    def cb(step):
        seen.append(step.step)
        if step.step == 2:
            assert step.render().shape == (1, 3, 128, 128)
            return True
        return None

    res = drag(ref_generator, ws, [[50, 40]], [[60, 46]], config=DragConfig(max_steps=20), callback=cb)
    assert seen == [0, 1, 2] and res.steps == 2 and res.stopped_by == "callback"
    assert res.image.shape == (1, 3, 128, 128)


def test_w_mode_optimises_one_vector(ref_generator, ref_io):
    ws = torch.from_numpy(ref_io["ws_psi07"][:1])
    res = drag(ref_generator, ws, [[50, 40]], [[60, 46]], config=DragConfig(max_steps=3, w_plus=False))
    rows = res.ws[0, :6]
    assert torch.equal(rows, rows[:1].expand_as(rows)) and torch.equal(res.ws[:, 6:], ws[:, 6:])


@pytest.mark.parametrize("handles,targets,msg", [([[200, 5]], [[5, 5]], "inside"), ([[5, 5]], [], "same number"),
                                                 ([[5, 5]], [[5, float("nan")]], "inside")])
def test_bad_points(ref_generator, ref_io, handles, targets, msg):
    with pytest.raises(ValueError, match=msg):
        drag(ref_generator, torch.from_numpy(ref_io["ws_psi07"][:1]), handles, targets)


@pytest.mark.parametrize("res,block", [(1024, 5), (512, 5), (256, 5), (128, 4), (64, 3)])
def test_default_feature_block_follows_resolution(res, block):
    blocks = [2 ** i for i in range(2, res.bit_length())]
    assert DragConfig().feature_block_for(blocks) == block
    if len(blocks) > 5:
        assert DragConfig.official().feature_block_for(blocks) == 5
    with pytest.raises(ValueError, match="out of range"):
        DragConfig(feature_block=len(blocks)).feature_block_for(blocks)


def test_radii_scale_from_512_with_a_floor():
    assert DragConfig().radii_for(512) == (3, 12) and DragConfig().radii_for(1024) == (6, 24)
    assert DragConfig().radii_for(128) == (2, 6)  # the scaled (1, 3) would supervise one pixel
    assert DragConfig.official().radii_for(128) == (1, 3)  # the official arithmetic, kept for comparison


def test_arrival_is_checked_independently(monkeypatch):
    """A tracker that reports arrival while LK finds the handle elsewhere does not stop on 'distance'."""
    import dragedit.draggan.verify as verify
    from dragedit.draggan.verify import Measured

    G = BlobGenerator()
    ws = torch.zeros(1, G.num_ws, G.w_dim)
    cfg = DragConfig(lr=0.05, r1=24, r2=48, max_steps=60, max_recoveries=1)
    honest = drag(G, ws, [[32.0, 32.0]], [[38.0, 32.0]], config=cfg)
    assert honest.stopped_by == "distance" and not any(honest.lost)
    assert np.hypot(*np.subtract(honest.measured[0], [38, 32])) < 2.0  # LK finds the blob where it went

    # LK always answers "the handle is still where it started": every arrival disagrees by ~6 px.
    monkeypatch.setattr(verify, "lk_track", lambda before, after, pts: Measured([list(p) for p in pts], [True] * len(pts)))
    res = drag(G, ws, [[32.0, 32.0]], [[38.0, 32.0]], config=cfg)
    assert res.stopped_by != "distance"
    assert res.lost == [True]
    kinds = [e["event"] for e in res.events]
    assert "recovered" in kinds and kinds[-1] == "lost"

    # LK that cannot find the patch at all (repainted, not moved) does not confirm an arrival either.
    monkeypatch.setattr(verify, "lk_track", lambda before, after, pts: Measured([list(p) for p in pts], [False] * len(pts)))
    res = drag(G, ws, [[32.0, 32.0]], [[38.0, 32.0]], config=cfg)
    assert res.stopped_by == "lost" and res.lost == [True]


def test_official_mode_skips_the_check():
    G = BlobGenerator()
    res = drag(G, torch.zeros(1, G.num_ws, G.w_dim), [[32, 32]], [[38, 32]],
               config=DragConfig.official(lr=0.05, r1=24, r2=48, max_steps=60, feature_block=4))
    assert res.measured is None and res.events == []


def test_non_finite_drag_raises():
    from dragedit.draggan import DragDiverged

    G = BlobGenerator()
    ws = torch.zeros(1, G.num_ws, G.w_dim)
    ws[0, 0, 0] = float("nan")
    with pytest.raises(DragDiverged):
        drag(G, ws, [[32, 32]], [[38, 32]], config=DragConfig(max_steps=5))
    with pytest.raises(ValueError):
        DragConfig(lr=float("inf"))


def test_bf16_keeps_the_official_trajectorys_points(ref_generator, ref_io, ref_json):
    """bf16 autocast (DragConfig(precision='bf16')) changes the losses in the 4th decimal, not the points."""
    d = ref_json["drag"]
    handles, targets = _ref_points(ref_json)
    ws = torch.from_numpy(ref_io["ws_psi07"][:1])
    cfg = DragConfig.official(max_steps=len(d["trajectory"]), lr=d["lr"], r1=d["r1"], r2=d["r2"],
                              feature_block=d["feature_idx"], optimize_rows=d["optimized_ws_layers"], precision="bf16")
    res = drag(ref_generator, ws, handles, targets, config=cfg)
    for step, s in zip(res.trajectory, d["trajectory"]):
        assert [[p[1], p[0]] for p in step["points"]] == s["points"]
    np.testing.assert_allclose([s["loss"] for s in res.trajectory[:len(d["trajectory"])]],
                               [s["loss"] for s in d["trajectory"]], atol=5e-3, rtol=0)


@pytest.mark.parametrize("block", [3, 4, 5])
def test_windowed_features_equal_the_whole_map(ref_generator, ref_io, block):
    """The late blocks run on crops around the boxes: the same features inside them (borders, overlaps, a box
    larger than the crops pay for), zeros outside."""
    ws = torch.from_numpy(ref_io["ws_psi07"][:1])
    whole = ref_generator.synthesis.features(ws, upto=block)[-1]
    size = whole.shape[-1]
    boxes = [(0, 5, 0, 7), (size // 2 - 3, size // 2 + 4, size // 3, size // 3 + 6),
             (size // 2, size // 2 + 5, size // 3 + 4, size // 3 + 9), (size - 6, size + 3, size - 4, size)]
    part = ref_generator.synthesis.features_in(ws, block, boxes)
    inside = torch.zeros(size, size, dtype=torch.bool)
    for y0, y1, x0, x1 in boxes[:1] + [(size // 2 - 3, size // 2 + 5, size // 3, size // 3 + 9)] + boxes[3:]:
        inside[max(y0, 0):y1, max(x0, 0):x1] = True  # the two overlapping boxes are run as their bounding box
    torch.testing.assert_close(part[..., inside], whole[..., inside], atol=1e-5, rtol=0)
    if block >= 4:  # windows paid: nothing computed outside them
        assert not part[..., ~inside].any()


def test_windowed_drag_equals_the_whole_map(ref_generator, ref_io, monkeypatch):
    """Windows around the handles give the whole map's drag, also when a recovery moves a handle out of them."""
    import dragedit.draggan.verify as verify
    from dragedit.draggan.verify import Measured

    ws = torch.from_numpy(ref_io["ws_psi07"][:1])
    handles, targets = [[40, 50], [80, 52]], [[36, 46], [86, 46]]
    runs = {w: drag(ref_generator, ws, handles, targets, config=DragConfig(max_steps=12, windowed=w))
            for w in (True, False)}
    assert [s["points"] for s in runs[True].trajectory] == [s["points"] for s in runs[False].trajectory]
    torch.testing.assert_close(runs[True].ws, runs[False].ws, atol=1e-5, rtol=0)

    # LK places the first handle 12 px off wherever the tracker has it: a recovery far outside the windows.
    def far(before, after, pts):
        return Measured([[p[0] + 12, p[1]] if i == 0 else list(p) for i, p in enumerate(pts)], [True] * len(pts))

    monkeypatch.setattr(verify, "lk_track", far)
    cfg = dict(max_steps=20, stop_distance=7.0, max_recoveries=1)
    runs = {w: drag(ref_generator, ws, handles, targets, config=DragConfig(windowed=w, **cfg)) for w in (True, False)}
    assert any(e["event"] == "recovered" for e in runs[True].events)
    assert [s["points"] for s in runs[True].trajectory] == [s["points"] for s in runs[False].trajectory]
    torch.testing.assert_close(runs[True].ws, runs[False].ws, atol=1e-5, rtol=0)
