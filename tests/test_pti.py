"""PTI: recovers images the generator made, improves real crops, resumes bit-exactly after kill -9."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from dragedit.inversion import PTIConfig, invert, load_inversion, save_inversion
from dragedit.inversion.losses import FallbackPerceptual, LPIPSLoss, Perceptual, backbone_cached
from dragedit.inversion.pti import checkpoint_threads, psnr
from dragedit.pipeline.imaging.align import AlignConfig, align_photo
from dragedit.common.errors import UserError
from dragedit.common.images import uint8_to_tensor
from dragedit.pipeline.imaging.photo import load_photo
from dragedit.stylegan2 import file_sha256
from tests.conftest import ASTRONAUT, REF_PKL, REPO, assert_user_error, run_cli

FAST = dict(w_avg_samples=2000, allow_download=False)


@pytest.fixture(scope="module")
def sha():
    return file_sha256(REF_PKL)


@pytest.mark.slow
def test_inverts_an_image_the_generator_made(ref_generator, sha, tmp_path):
    G = ref_generator
    with torch.no_grad():
        z = torch.from_numpy(np.random.RandomState(5).randn(1, G.z_dim)).float()
        target = G.synthesis(G.mapping(z, truncation_psi=0.7))
        start = G.synthesis(G.mapping.w_avg[None, None].expand(1, G.num_ws, -1))
    cfg = PTIConfig(pivot_steps=150, tune_steps=60, **FAST)
    res = invert(G, target, config=cfg, work_dir=tmp_path, progress=False, base_id=sha)
    m = save_inversion(res, tmp_path, G, sha, target)
    start_psnr = psnr(start, target)
    assert m["pivot"]["psnr"] > start_psnr + 6, (start_psnr, m["pivot"])
    assert m["tuned"]["psnr"] > m["pivot"]["psnr"] + 3
    assert not (tmp_path / "pti_checkpoint.pt").exists()
    # Reloading gives exactly the generator the metrics describe.
    w, Gt = load_inversion(tmp_path, G, sha)
    with torch.no_grad():
        again = psnr(Gt.synthesis(w), target)
    assert abs(again - m["tuned"]["psnr"]) < 1e-6
    assert sum(p.numel() for p in G.parameters()) > 0 and not torch.equal(
        Gt.synthesis.b128.conv1.weight, G.synthesis.b128.conv1.weight)  # the base generator was not modified in place


@pytest.mark.slow
def test_tuning_beats_the_pivot_on_a_real_crop(ref_generator, sha, tmp_path):
    crop = align_photo(load_photo(ASTRONAUT), AlignConfig(size=128)).crop
    target = uint8_to_tensor(crop)
    res = invert(ref_generator, target, config=PTIConfig(pivot_steps=60, tune_steps=80, **FAST), progress=False, base_id=sha)
    m = save_inversion(res, tmp_path, ref_generator, sha, target)
    assert m["tuned"]["psnr"] > m["pivot"]["psnr"] + 2
    assert m["tuned"]["ssim"] > m["pivot"]["ssim"]
    log = json.loads((tmp_path / "loss_log.json").read_text())
    tune = [e["perceptual"] for e in log if e["stage"] == "tune"]
    assert tune[-1] < tune[0]
    lpips = backbone_cached("vgg") and backbone_cached("alex")
    assert m["losses_used"] == ({"pivot": "lpips-vgg", "tune": "lpips-alex"} if lpips
                                else {"pivot": "l1+ms-ssim", "tune": "l1+ms-ssim"})  # the suite runs offline
    assert m["lpips_metric_available"] is backbone_cached("alex")
    assert (m["tuned"]["lpips"] is None) is not backbone_cached("alex")


def test_w_plus_and_locality_options(ref_generator, sha):
    G = ref_generator
    target = uint8_to_tensor(np.full((128, 128, 3), 128, np.uint8))
    res = invert(G, target, config=PTIConfig(pivot_steps=20, tune_steps=3, pivot_space="w+", locality=True, **FAST),
                 progress=False, base_id=sha)
    assert res.w.shape == (1, G.num_ws, G.w_dim)
    assert not torch.equal(res.w[0, 0], res.w[0, -1])
    assert len([e for e in res.loss_log if e["stage"] == "tune"]) == 3


def test_wrong_base_generator_is_refused(ref_generator, sha, tmp_path):
    target = uint8_to_tensor(np.full((128, 128, 3), 90, np.uint8))
    res = invert(ref_generator, target, config=PTIConfig(pivot_steps=5, tune_steps=2, **FAST), progress=False, base_id=sha)
    save_inversion(res, tmp_path, ref_generator, sha, target)
    with pytest.raises(UserError, match="another generator"):
        load_inversion(tmp_path, ref_generator, "0" * 64)


def _checkpoint_stage(path):
    try:
        st = torch.load(path, weights_only=True)
        return st["stage"], st["step"]
    except Exception:
        return None


def _invert_cmd(align_dir, out):
    return [sys.executable, "-m", "dragedit", "invert", str(align_dir), "--generator", str(REF_PKL), "-o", str(out),
            "--pivot-steps", "80", "--tune-steps", "60", "--checkpoint-every", "7", "--offline", "--device", "cpu",
            "--threads", "2", "--json"]  # the same count for the reference whatever else runs


def _kill_when(cmd, ckpt, want_stage, min_step):
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    try:
        while time.time() < deadline:
            st = _checkpoint_stage(ckpt) if ckpt.exists() else None
            if st and st[0] == want_stage and st[1] >= min_step:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                return st
            if proc.poll() is not None:
                pytest.fail("the run finished before it could be killed")
            time.sleep(0.005)
        pytest.fail("no checkpoint appeared")
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.slow
def test_kill9_and_resume_equals_uninterrupted(tmp_path):
    align_dir = tmp_path / "al"
    assert run_cli("align", ASTRONAUT, "-o", align_dir, "--size", "128").returncode == 0
    ref = tmp_path / "ref"
    proc = subprocess.run(_invert_cmd(align_dir, ref), cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    for stage, min_step in (("pivot", 14), ("tune", 7)):
        out = tmp_path / f"killed_{stage}"
        killed_at = _kill_when(_invert_cmd(align_dir, out), out / "pti_checkpoint.pt", stage, min_step)
        assert killed_at[0] == stage
        assert not (out / "metrics.json").exists()
        assert checkpoint_threads(out) == 2  # what a resume without --threads continues with
        proc = subprocess.run(_invert_cmd(align_dir, out), cwd=REPO, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        for name in ("pivot.safetensors", "generator_delta.safetensors"):
            a, b = load_file(str(ref / name)), load_file(str(out / name))
            assert a.keys() == b.keys()
            assert all(torch.equal(a[k], b[k]) for k in a), (stage, name)
        la = json.loads((ref / "loss_log.json").read_text())
        lb = json.loads((out / "loss_log.json").read_text())
        assert la == lb
        assert not list(out.glob(".*part"))


def test_cli_invert_bad_inputs(tmp_path):
    assert_user_error(run_cli("invert", tmp_path, "--generator", REF_PKL, "-o", tmp_path / "o"), "aligned.png")
    wide = tmp_path / "wide.png"
    from PIL import Image

    Image.new("RGB", (200, 100)).save(wide)
    assert_user_error(run_cli("invert", wide, "--generator", REF_PKL, "-o", tmp_path / "o"), "not square")


# ---- the faster schedule: a coarse pivot, plateau stops (#16) ---------------------------------------------
def test_coarse_render_is_the_skip_generators_partial_image(ref_generator):
    G = ref_generator
    ws = G.mapping(torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(1)), truncation_psi=0.7)
    with torch.no_grad():
        full = G.synthesis(ws)
        coarse = G.synthesis(ws, max_resolution=G.img_resolution // 2)
        same = G.synthesis(ws, max_resolution=G.img_resolution)
    assert coarse.shape[-1] == G.img_resolution // 2 and torch.equal(same, full)
    # The coarse image is what the last block adds its RGB to: close to the downsampled full image.
    down = torch.nn.functional.interpolate(full, size=coarse.shape[-2:], mode="area")
    assert psnr(coarse, down) > 12


def test_plateau_rule_reads_the_log_only():
    from dragedit.inversion.pti import _plateau

    cfg = PTIConfig(plateau_window=5, plateau_tol=0.01)
    falling = [{"stage": "tune", "loss": 1.0 - 0.02 * i} for i in range(10)]
    flat = [{"stage": "tune", "loss": 0.5 + 0.0001 * (i % 2)} for i in range(10)]
    assert not _plateau(falling, "tune", cfg) and _plateau(flat, "tune", cfg)
    assert not _plateau(flat[:9], "tune", cfg)  # two whole windows are needed
    assert not _plateau(flat, "pivot", cfg) and not _plateau(flat, "tune", PTIConfig(plateau_window=0))


def test_coarse_then_fine_pivot_and_steps_run(ref_generator, sha):
    target = uint8_to_tensor(align_photo(load_photo(ASTRONAUT), AlignConfig(size=128)).crop)
    cfg = PTIConfig(pivot_steps=12, pivot_skip_blocks=1, pivot_fine_steps=4, tune_steps=6, plateau_window=0, **FAST)
    res = invert(ref_generator, target, config=cfg, progress=False, base_id=sha)
    pivot = [e for e in res.loss_log if e["stage"] == "pivot"]
    assert [bool(e.get("fine")) for e in pivot] == [False] * 8 + [True] * 4
    assert res.metrics["pivot_steps_run"] == 12 and res.metrics["tune_steps_run"] == 6
    # A plateau during the coarse phase starts the fine phase early; the fine phase still runs in full.
    flat = PTIConfig(pivot_steps=40, pivot_skip_blocks=1, pivot_fine_steps=3, tune_steps=0, plateau_window=2,
                     plateau_tol=10.0, **FAST)
    res = invert(ref_generator, target, config=flat, progress=False, base_id=sha)
    pivot = [e for e in res.loss_log if e["stage"] == "pivot"]
    assert [bool(e.get("fine")) for e in pivot] == [False] * 4 + [True] * 3


def test_official_schedule_and_cache_keys():
    old = PTIConfig.official()
    assert (old.pivot_steps, old.tune_steps, old.tune_lr, old.pivot_skip_blocks, old.plateau_window) == \
        (450, 350, 3e-4, 0, 0)
    key = old.result_dict()
    assert "pivot_skip_blocks" not in key and "plateau_tol" not in key  # the keys sessions had before
    new = PTIConfig().result_dict()
    assert new["pivot_skip_blocks"] == 1 and new["plateau_window"] == 25


# ---- inverting for motion: a resolution cap (#24) ---------------------------------------------------------
def test_resolution_cap_renders_and_keys(ref_generator, sha):
    """With `max_resolution` below the generator's size PTI fits the skip RGB there and leaves the later blocks
    as they were; caps a generator does not exceed change nothing, not even the cache key."""
    target = uint8_to_tensor(align_photo(load_photo(ASTRONAUT), AlignConfig(size=128)).crop)
    cfg = PTIConfig(pivot_steps=4, pivot_fine_steps=2, tune_steps=3, max_resolution=64, plateau_window=0, **FAST)
    res = invert(ref_generator, target, config=cfg, progress=False, base_id=sha)
    assert res.resolution == 64 and res.cap == 64
    before, after = ref_generator.synthesis.state_dict(), res.G.synthesis.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("b128."))
    assert not all(torch.equal(before[k], after[k]) for k in before if k.startswith("b64."))
    assert PTIConfig().for_generator(128).result_dict() == PTIConfig(max_resolution=None).result_dict()
    assert PTIConfig().for_generator(512).result_dict()["max_resolution"] == 256
    assert "max_resolution" not in PTIConfig.official().result_dict()


def test_caps_that_render_alike_share_a_key():
    """A cap between block sizes renders at the next block: it is keyed as that block (or as none)."""
    assert PTIConfig(max_resolution=300).for_generator(1024).max_resolution == 512
    assert PTIConfig(max_resolution=300).for_generator(512).max_resolution is None
    assert PTIConfig(max_resolution=256).for_generator(512).result_dict() == \
        PTIConfig(max_resolution=200).for_generator(512).result_dict()


# ---- the perceptual loss against a fixed target ----------------------------------------------------------
@pytest.mark.parametrize("net", ["vgg", "alex"])
def test_lpips_against_a_fixed_target_is_lpips(net):
    """The target's backbone features are computed once; the distance and its gradient are LPIPS's own."""
    loss = LPIPSLoss(net, backbone_weights=False)  # a random backbone: no download, the same arithmetic
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(2, 3, 64, 64, generator=gen) * 2 - 1).requires_grad_(True)
    y = torch.rand(1, 3, 64, 64, generator=gen) * 2 - 1
    both = loss(x, y.expand(2, -1, -1, -1))
    fixed = loss.against(y)(x)
    assert both.shape == fixed.shape == (2,) and torch.allclose(both, fixed, rtol=1e-6, atol=0)
    g_both, = torch.autograd.grad(both.sum(), x)
    g_fixed, = torch.autograd.grad(fixed.sum(), x)
    assert torch.allclose(g_both, g_fixed, rtol=1e-5, atol=1e-9)
    assert FallbackPerceptual().against(y)(x).shape == (2,)


def test_pti_with_a_fixed_target_loss_is_unchanged(ref_generator, sha, monkeypatch):
    """PTI with LPIPS (random backbones) inverts bit for bit as when both images go through the backbone
    every step."""
    import dragedit.inversion.pti as pti

    monkeypatch.setattr(pti, "perceptual_loss", lambda net, *a, **k: LPIPSLoss(net, backbone_weights=False))
    target = uint8_to_tensor(align_photo(load_photo(ASTRONAUT), AlignConfig(size=128)).crop)
    cfg = PTIConfig(pivot_steps=4, pivot_fine_steps=2, tune_steps=3, plateau_window=0, **FAST)
    torch.manual_seed(0)
    cached = invert(ref_generator, target, config=cfg, progress=False, base_id=sha)
    monkeypatch.setattr(LPIPSLoss, "against", Perceptual.against)
    torch.manual_seed(0)
    every_step = invert(ref_generator, target, config=cfg, progress=False, base_id=sha)
    assert cached.losses_used == {"pivot": "lpips-vgg", "tune": "lpips-alex"}
    assert [e["loss"] for e in cached.loss_log] == [e["loss"] for e in every_step.loss_log]
    assert torch.equal(cached.w, every_step.w)
    assert all(torch.equal(a, b) for a, b in zip(cached.G.parameters(), every_step.G.parameters()))


def test_bf16_pti_fits_as_fp32_does(ref_generator, sha):
    """`precision='bf16'` runs the generator's forward under bf16 autocast: another result (its own cache key),
    as close to the target as fp32's; the weights and pivot stay fp32."""
    target = uint8_to_tensor(align_photo(load_photo(ASTRONAUT), AlignConfig(size=128)).crop)
    runs = {}
    for precision in ("fp32", "bf16"):
        cfg = PTIConfig(pivot_steps=6, pivot_fine_steps=2, tune_steps=4, max_resolution=32, plateau_window=0,
                        precision=precision, **FAST)
        runs[precision] = invert(ref_generator, target, config=cfg, progress=False, base_id=sha)
    a, b = runs["fp32"], runs["bf16"]
    assert b.w.dtype == torch.float32 and all(p.dtype == torch.float32 for p in b.G.parameters())
    assert not torch.equal(a.w, b.w)
    tuned = [[e["loss"] for e in r.loss_log if e["stage"] == "tune"] for r in (a, b)]
    assert tuned[1][-1] < tuned[1][0] and abs(tuned[1][-1] - tuned[0][-1]) < 0.1 * tuned[0][-1]
    with pytest.raises(ValueError, match="precision"):
        PTIConfig(precision="fp16")


def _near(G, w, seed, scale=0.6):
    """A render of G near `w` (another view of the same face, as a clip's frames are)."""
    with torch.no_grad():
        z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim)).float()
        w2 = w + scale * (G.mapping(z, truncation_psi=0.7) - w)
        return G.synthesis(w2, noise_mode="const")


def test_shared_tuning_fits_the_companions_too(ref_generator, sha):
    """STIT's shared tuning: each companion gets a pivot, the steps take them in turn, and the tuned generator
    renders them closer than one tuned on the target alone (whose pivot stays the target's)."""
    from dragedit.inversion import Companions

    G = ref_generator
    with torch.no_grad():
        w = G.mapping(torch.from_numpy(np.random.RandomState(3).randn(1, G.z_dim)).float(), truncation_psi=0.7)
        target = G.synthesis(w, noise_mode="const")
    comps = Companions(tuple(_near(G, w, s) for s in (11, 12, 13)), pivot_steps=15)
    cfg = PTIConfig(pivot_steps=15, tune_steps=18, plateau_window=0, lpips_threshold=0.0, **FAST)
    alone = invert(G, target, config=cfg, progress=False, base_id=sha)
    shared = invert(G, target, config=cfg, progress=False, base_id=sha, companions=comps)
    assert alone.w_companions is None and shared.w_companions.shape == (3, G.num_ws, G.w_dim)
    assert torch.equal(alone.w, shared.w)  # the pivot is the target's either way
    assert shared.metrics["companions"] == 3 and "companions_s" in shared.metrics["timings"]
    tune = [e for e in shared.loss_log if e["stage"] == "tune"]
    assert [e["companion"] for e in tune[:6]] == [0, 1, 2, 0, 1, 2]
    with torch.no_grad():
        def fit(Gt):
            return np.mean([psnr(Gt.synthesis(shared.w_companions[k:k + 1], noise_mode="const"), t)
                            for k, t in enumerate(comps.targets)])
        print("companions' PSNR, shared vs alone:", fit(shared.G), fit(alone.G))
        assert fit(shared.G) > fit(alone.G) + 0.5, (fit(shared.G), fit(alone.G))


def test_shared_tuning_resumes_to_the_same_result(ref_generator, sha, tmp_path):
    """Stopped in the companions' pivots or in the tuning, a second call resumes from the checkpoint and ends
    where an uninterrupted run does; a checkpoint made without companions (or with others) is not reused."""
    from dragedit.inversion import Companions

    G = ref_generator
    w_avg = G.mapping.w_avg[None, None].expand(1, G.num_ws, -1)
    target = _near(G, w_avg, 5)
    comps = Companions((_near(G, w_avg, 6), _near(G, w_avg, 7)), pivot_steps=8)
    cfg = PTIConfig(pivot_steps=12, tune_steps=12, checkpoint_every=4, plateau_window=0, **FAST)
    ref = invert(G, target, config=cfg, progress=False, base_id=sha, companions=comps)

    class Stop(Exception):
        pass

    def stop_at(stage, at):
        def hook(s, step):
            if s == stage and step == at:
                raise Stop
        return hook

    for stage, at in (("pivot", 9), ("tune", 9)):
        work = tmp_path / stage
        with pytest.raises(Stop):
            invert(G, target, config=cfg, work_dir=work, progress=False, base_id=sha, companions=comps,
                   step_hook=stop_at(stage, at))
        assert (work / "pti_checkpoint.pt").exists()
        with pytest.raises(Stop):  # without companions the checkpoint is another run's: it starts over
            invert(G, target, config=cfg, work_dir=work, progress=False, base_id=sha, step_hook=stop_at("pivot", 0))
        with pytest.raises(Stop):  # back with them, and killed again at once, on the new run's checkpoint
            invert(G, target, config=cfg, work_dir=work, progress=False, base_id=sha, companions=comps,
                   step_hook=stop_at(stage, at))
        got = invert(G, target, config=cfg, work_dir=work, progress=False, base_id=sha, companions=comps)
        assert torch.equal(got.w, ref.w) and torch.equal(got.w_companions, ref.w_companions), stage
        assert all(torch.equal(a, b) for a, b in zip(got.G.synthesis.state_dict().values(),
                                                     ref.G.synthesis.state_dict().values())), stage
        assert got.loss_log == ref.loss_log
