"""Our generator against the official StyleGAN2-ADA outputs in tests/fixtures/stylegan2_reference."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dragedit.stylegan2 import GeneratorConfig, infer_config, load_generator, save_generator
from tests.conftest import REF_PKL, REF_STATE_DICT

TOL = 1e-4


@pytest.fixture(scope="module", params=["pickle", "state_dict"])
def G(request):
    return load_generator(REF_PKL if request.param == "pickle" else REF_STATE_DICT)


def test_architecture(G, ref_json):
    kw = ref_json["generator_kwargs"]
    assert (G.z_dim, G.w_dim, G.img_resolution, G.img_channels, G.num_ws) == (kw["z_dim"], kw["w_dim"],
                                                                               kw["img_resolution"], 3, 12)


def test_mapping_matches(G, ref_io):
    z = torch.from_numpy(ref_io["z"])
    with torch.no_grad():
        np.testing.assert_allclose(G.mapping(z).numpy(), ref_io["ws_psi1"], atol=TOL, rtol=0)
        np.testing.assert_allclose(G.mapping(z, truncation_psi=0.7).numpy(), ref_io["ws_psi07"], atol=TOL, rtol=0)


@pytest.mark.parametrize("fused", [True, False])
def test_synthesis_and_features_match(G, ref_io, fused):
    ws = torch.from_numpy(ref_io["ws_psi07"])
    with torch.no_grad():
        img, feats = G.synthesis(ws, noise_mode="const", return_features=True, fused=fused)
    np.testing.assert_allclose(img.numpy(), ref_io["img"], atol=TOL, rtol=0)
    assert len(feats) == 6
    for k, f in enumerate(feats):
        np.testing.assert_allclose(f.numpy(), ref_io[f"feature_{k}"], atol=TOL, rtol=0, err_msg=f"feature {k}")


def test_noise_none_matches(G, ref_io):
    ws = torch.from_numpy(ref_io["ws_psi07"])
    with torch.no_grad():
        img = G.synthesis(ws, noise_mode="none")
    np.testing.assert_allclose(img.numpy(), ref_io["img_noise_none"], atol=TOL, rtol=0)
    assert np.abs(ref_io["img_noise_none"] - ref_io["img"]).max() > 1e-3  # the two modes really differ


def test_early_stop_features_equal_full_run(G, ref_io):
    ws = torch.from_numpy(ref_io["ws_psi07"])
    with torch.no_grad():
        _, full = G.synthesis(ws, return_features=True)
        for k in range(6):
            part = G.synthesis.features(ws, upto=k)
            assert len(part) == k + 1
            assert torch.equal(part[-1], full[k])
    with pytest.raises(ValueError):
        G.synthesis.features(ws, upto=6)


def test_random_noise_mode_varies(G, ref_io):
    ws = torch.from_numpy(ref_io["ws_psi07"][:1])
    with torch.no_grad():
        a, b = G.synthesis(ws, noise_mode="random"), G.synthesis(ws, noise_mode="random")
    assert not torch.equal(a, b)


def test_save_load_round_trip_exact(G, tmp_path, ref_io):
    path = save_generator(G, tmp_path / "g.safetensors", provenance={"source": "test"})
    G2, info = load_generator(path, with_info=True)
    assert info["source_format"] == "dragedit-safetensors" and info["provenance"] == {"source": "test"}
    assert G2.config == G.config
    sd, sd2 = G.state_dict(), G2.state_dict()
    assert sd.keys() == sd2.keys()
    assert all(torch.equal(sd[k], sd2[k]) for k in sd)
    ws = torch.from_numpy(ref_io["ws_psi07"])
    with torch.no_grad():
        assert torch.equal(G.synthesis(ws), G2.synthesis(ws))
    assert not list(tmp_path.glob("*.part"))


def test_infer_config_from_shapes(ref_json):
    sd = torch.load(REF_STATE_DICT, weights_only=True)
    cfg = infer_config(sd)
    want = GeneratorConfig.from_official_kwargs(ref_json["generator_kwargs"])
    assert cfg == want


def test_ffhq512_architecture_shapes():
    cfg = GeneratorConfig()  # DragGAN's FFHQ 512 architecture
    from dragedit.stylegan2 import Generator

    G = Generator(cfg)
    assert G.num_ws == 16 and G.synthesis.channels == [512, 512, 512, 512, 512, 256, 128, 64]
    assert infer_config(G.state_dict()) == cfg


@pytest.mark.parametrize("up", [1, 2])
@pytest.mark.parametrize("demodulate", [True, False])
def test_modulated_conv_paths_agree(up, demodulate):
    """Modulating the weights (the reference's inference path) and scaling the activations with demodulation
    from sum_k w^2 (what one style picks where the activations are the smaller, and what training runs) give
    the same numbers: for one image, for a batch of crops of one image, and for a batch of styles."""
    from dragedit.stylegan2.ops import modulated_conv2d, setup_filter

    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(16, 8, 3, 3, generator=gen)
    f = setup_filter()

    def both(x, styles):
        kw = dict(up=up, padding=1, resample_filter=f, demodulate=demodulate)
        return modulated_conv2d(x, weight, styles, fused=True, **kw), modulated_conv2d(x, weight, styles, fused=False, **kw)

    x = torch.randn(3, 8, 12, 12, generator=gen)  # 3456 activations > 1152 weights: `fused` modulates the weights
    for xs, styles in ((x[:1], torch.randn(1, 8, generator=gen)), (x, torch.randn(1, 8, generator=gen)),
                       (x, torch.randn(3, 8, generator=gen))):
        a, b = both(xs, styles)
        assert a.shape == b.shape == (xs.shape[0], 16, 12 * up, 12 * up)
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("up", [1, 2])
def test_style_gradients_agree_whichever_path_computes_them(up):
    """Where only the styles need a gradient (the pivot, the drag), one style scales the activations at every size;
    with the weights needing one too (tuning), it modulates them where the activations are the larger. The
    styles' gradients agree."""
    from dragedit.stylegan2.ops import modulated_conv2d, setup_filter

    gen = torch.Generator().manual_seed(1)
    x = torch.randn(1, 8, 24, 24, generator=gen)  # 4608 activations > 1152 weights
    s0 = torch.randn(1, 8, generator=gen)
    grads = []
    for weights_too in (False, True):
        weight = torch.randn(16, 8, 3, 3, generator=torch.Generator().manual_seed(2)).requires_grad_(weights_too)
        styles = s0.clone().requires_grad_(True)
        y = modulated_conv2d(x, weight, styles, up=up, padding=1, resample_filter=setup_filter())
        (y * torch.linspace(-1, 1, y.numel()).reshape(y.shape)).sum().backward()
        grads.append(styles.grad)
    np.testing.assert_allclose(grads[0].numpy(), grads[1].numpy(), atol=1e-4, rtol=1e-4)
