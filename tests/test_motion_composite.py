"""Motion-transfer compositing: the photo's own pixels move by what the generator did, nothing else changes."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from dragedit.pipeline.imaging.paste import CompositeConfig, warp_paste
from dragedit.pipeline.imaging.motion import MotionConfig, backward_field

CROP = 128


def _texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A photo-like texture: smooth colour blobs plus fine detail, so optical flow has something to hold."""
    rng = np.random.RandomState(seed)
    coarse = cv2.resize(rng.rand(h // 16, w // 16, 3).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    fine = cv2.GaussianBlur(rng.rand(h, w, 3).astype(np.float32), (0, 0), 1.5)
    return np.clip((0.6 * coarse + 0.8 * (fine - 0.5) + 0.2) * 255, 0, 255).astype(np.uint8)


def _similarity(scale: float, angle_deg: float, tx: float, ty: float) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    return np.array([[scale * np.cos(a), -scale * np.sin(a), tx], [scale * np.sin(a), scale * np.cos(a), ty], [0, 0, 1.0]])


def _scene():
    photo = _texture(420, 560)
    photo_to_crop = _similarity(0.5, 8.0, -80.0, -60.0)
    crop = cv2.warpAffine(photo, photo_to_crop[:2], (CROP, CROP), flags=cv2.INTER_AREA)
    return photo, photo_to_crop, crop


def _bump(cx: float, cy: float, sigma: float) -> np.ndarray:
    ys, xs = np.mgrid[0:CROP, 0:CROP].astype(np.float32)
    return np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma ** 2))


def _translate_region(img: np.ndarray, t: tuple[float, float], weight: np.ndarray) -> np.ndarray:
    """edited(x) = img(x - t w(x)): the region under `weight` moves by t crop px."""
    ys, xs = np.mgrid[0:CROP, 0:CROP].astype(np.float32)
    return cv2.remap(img, xs - t[0] * weight, ys - t[1] * weight, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101)


def test_known_translation_moves_the_photos_own_pixels():
    photo, photo_to_crop, crop = _scene()
    t = (2.0, -1.5)  # crop px
    weight = np.clip(_bump(64, 64, 14) * 1.6, 0, 1)  # a plateau of full motion in the middle
    edited = _translate_region(crop, t, weight)
    region = np.ones((CROP, CROP), np.float32)
    res = warp_paste(photo, crop, crop, edited, region, photo_to_crop)
    out = res.photo
    assert res.generated.max() == 0  # pure motion: no generated pixels needed
    # The middle of the moved region, in the photo: the shift found there is t mapped to photo pixels.
    L = photo_to_crop[:2, :2]
    want = np.linalg.solve(L, np.array(t))  # photo px
    centre = np.linalg.solve(L, np.array([64.0, 64.0]) - photo_to_crop[:2, 2])
    cx, cy = int(round(centre[0])), int(round(centre[1]))
    half = 24
    g0, g1 = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY), cv2.cvtColor(out, cv2.COLOR_RGB2GRAY)
    found, status, _ = cv2.calcOpticalFlowPyrLK(g0, g1, np.array([[[cx, cy]]], np.float32), None, winSize=(31, 31),
                                                maxLevel=3)
    dx, dy = found[0, 0] - (cx, cy)
    assert status[0, 0] == 1 and np.hypot(dx - want[0], dy - want[1]) < 0.5, ((dx, dy), want)
    # The moved pixels are the photo's: sharp, not the crop's resolution (the crop is 2x smaller).
    lap = lambda im: cv2.Laplacian(cv2.cvtColor(im, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var()
    patch = (slice(cy - half, cy + half), slice(cx - half, cx + half))
    assert lap(out[patch]) > 0.8 * lap(photo[patch])
    # Everywhere the field is zero, the photo is bit-identical; far from the region it always is.
    changed = (out != photo).any(axis=2)
    far = np.ones(changed.shape, bool)
    far[cy - 100:cy + 100, cx - 100:cx + 100] = False
    assert not changed[far].any()
    assert changed.sum() > 500


def test_no_change_composites_to_the_original_bit_for_bit():
    photo, photo_to_crop, crop = _scene()
    res = warp_paste(photo, crop, crop, crop.copy(), np.ones((CROP, CROP), np.float32), photo_to_crop)
    assert np.array_equal(res.photo, photo)
    assert res.stats["changed_pixels"] == 0 and not res.field.any()


def _photo_point(photo_to_crop: np.ndarray, x: float, y: float) -> tuple[int, int]:
    L = photo_to_crop[:2, :2]
    p = np.linalg.solve(L, np.array([x, y]) - photo_to_crop[:2, 2])
    return int(round(p[0])), int(round(p[1]))


def test_a_repaint_where_nothing_moved_keeps_the_photos_pixels():
    photo, photo_to_crop, crop = _scene()
    edited = _translate_region(crop, (2.0, 0.0), np.clip(_bump(64, 64, 14) * 1.6, 0, 1))
    edited[60:70, 60:70] = (20, 20, 20)  # the generator painted a dark blob; nothing moved apart there
    region = np.zeros((CROP, CROP), np.float32)
    region[24:104, 24:104] = 1
    res = warp_paste(photo, crop, crop, edited, region, photo_to_crop, paths=[([60.0, 64.0], [62.0, 64.0])])
    assert not res.field[region == 0].any()
    assert res.generated.max() == 0  # a repaint, not revealed content
    assert res.stats["repaint_ignored_crop_px"] >= 60  # and the record says how much was left out
    cx, cy = _photo_point(photo_to_crop, 65.0, 65.0)
    patch = (slice(cy - 6, cy + 7), slice(cx - 6, cx + 7))
    # the blob does not reach the photo: what is there is the photo's own pixels, moved (no dark paint)
    assert res.photo[patch].mean() > photo[patch].mean() - 10 and res.photo[patch].mean() > 70


def _opening(crop: np.ndarray, gap: float) -> tuple[np.ndarray, np.ndarray]:
    """A mouth that opens: above row 64 the crop moves up by `gap`, below it down by `gap`, inside a disc; the
    band that opens between them shows new, dark content (the inside of the mouth)."""
    ys, xs = np.mgrid[0:CROP, 0:CROP].astype(np.float32)
    weight = np.clip(_bump(64, 64, 16) * 1.8, 0, 1)
    side = np.where(ys < 64, -1.0, 1.0).astype(np.float32)
    shift = side * gap * weight
    src_y = ys - shift  # edited(x) = crop(x - shift)
    opened = np.abs(ys - 64) < gap * weight  # rows no crop pixel moves into
    src_y = np.where(opened, 64.0, src_y)
    edited = cv2.remap(crop, xs, src_y.astype(np.float32), cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101)
    edited[opened] = (25, 10, 15)
    return edited, opened


def test_revealed_content_is_generated_and_feathered():
    photo, photo_to_crop, crop = _scene()
    edited, opened = _opening(crop, 4.0)
    region = np.ones((CROP, CROP), np.float32)
    paths = [([64.0, 60.0], [64.0, 56.0]), ([64.0, 68.0], [64.0, 72.0])]
    res = warp_paste(photo, crop, crop, edited, region, photo_to_crop, paths=paths)
    g = res.generated
    assert g[62:67, 58:71].mean() > 0.5  # the opened band is filled from the render ...
    cx, cy = _photo_point(photo_to_crop, 64.0, 64.0)
    assert res.photo[cy - 1:cy + 2, cx - 4:cx + 5].mean() < 70  # ... dark, as the render shows it
    ring = (g > 0.02) & (g < 0.98)
    assert ring.sum() > 20  # ... with a feathered edge, not a hard cut
    assert g[:20].max() == 0 and g[110:].max() == 0  # and nowhere far from it
    # A drag that stopped because it lost a handle repainted somewhere: motion only, no generated pixels.
    lost = warp_paste(photo, crop, crop, edited, region, photo_to_crop, drag_lost=True, paths=paths)
    assert lost.generated.max() == 0 and np.array_equal(lost.field, res.field)
    kept = warp_paste(photo, crop, crop, edited, region, photo_to_crop, drag_lost=True, paths=paths,
                      config=CompositeConfig(generated_when_lost=True))
    assert np.array_equal(kept.generated, res.generated)
    # Far from every handle's path, even revealed content is not the edit's.
    elsewhere = warp_paste(photo, crop, crop, edited, region, photo_to_crop, paths=[([10.0, 10.0], [12.0, 10.0])])
    assert elsewhere.generated.max() == 0


@pytest.mark.parametrize("method,tolerance", [("dis", 0.2), ("farneback", 0.45)])
def test_anchors_pin_the_field(method, tolerance):
    _, _, crop = _scene()
    edited = _translate_region(crop, (1.5, 1.0), np.clip(_bump(64, 64, 14) * 1.6, 0, 1))
    region = np.ones((CROP, CROP), np.float32)
    cfg = MotionConfig(method=method)
    b, conf = backward_field(crop, edited, region, [], cfg)
    assert np.allclose(b[64, 64], [-1.5, -1.0], atol=tolerance)  # Farneback underestimates (bench_composite.py)
    # An anchor says the point at (40, 40) moved to (43, 40): the field there must bring it back.
    pinned, _ = backward_field(crop, edited, region, [([40.0, 40.0], [43.0, 40.0])], cfg)
    assert np.allclose(pinned[40, 43], [-3.0, 0.0], atol=0.17)  # less the 0.15 px soft threshold
    assert conf.shape == (CROP, CROP)


def test_field_from_renders_at_half_size_is_as_accurate():
    """PTI's resolution cap has the generator render at half the crop (256 of 512): the composite brings both
    renders up and reads the motion there. On a real face with a known motion, the field's end-point error
    stays within 0.1 px of the one read from full-size renders (scripts/eval_motion_field.py, on more faces)."""
    from PIL import Image

    from dragedit.pipeline.imaging.align import AlignConfig, align_photo
    from dragedit.pipeline.imaging.geometry import map_points
    from dragedit.pipeline.imaging.motion import warp_image
    from dragedit.pipeline.imaging.photo import load_photo
    from tests.conftest import ASTRONAUT

    size = 256
    al = align_photo(load_photo(ASTRONAUT), AlignConfig(size=size))
    lm = map_points(al.photo_to_crop, al.landmarks)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    truth = np.zeros((size, size, 2), np.float32)
    for idx, (dx, dy) in {48: (-1.5, -3.0), 54: (1.5, -3.0), 8: (0.0, 2.5)}.items():  # mouth corners up, chin down
        g = np.exp(-((xs - lm[idx][0]) ** 2 + (ys - lm[idx][1]) ** 2) / (2 * (0.05 * size) ** 2))
        truth -= g[..., None] * np.array([dx, dy], np.float32)
    edited = warp_image(al.crop, truth)

    def half(img):
        small = cv2.resize(img, (size // 2, size // 2), interpolation=cv2.INTER_AREA)
        return np.asarray(Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC))

    region = np.zeros((size, size), np.float32)
    region[size // 8: -size // 8, size // 8: -size // 8] = 1
    full, _ = backward_field(al.crop, edited, region, [], MotionConfig())
    low, _ = backward_field(half(al.crop), half(edited), region, [], MotionConfig())
    moved = (np.linalg.norm(truth, axis=2) > 0.5) & (region > 0)
    epe = {k: float(np.linalg.norm(b - truth, axis=2)[moved].mean()) for k, b in (("full", full), ("half", low))}
    assert epe["full"] < 0.5, epe  # the field reads the motion at all
    assert epe["half"] - epe["full"] <= 0.1, epe
