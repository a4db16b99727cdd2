"""The DragGAN loop: motion supervision (paper eq. 1) and point tracking (eq. 2) on W+.

Each step runs the synthesis only up to the feature block (no RGB, no later blocks), and its late blocks
only on crops around the handles (`SynthesisNetwork.features_in`), reads the upsampled features at
the disc and patch pixels only (`sampling.py`), tracks the handles, checks the
stop rule, then takes one Adam step on the optimised latent rows. The image is rendered only when
asked (callback previews), when an arrival or a jump of the tracker is checked independently
(`verify.py`), and once at the end.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F

from dragedit.common.memory import freed_memory_kept, worth_keeping

from .config import DragConfig
from .sampling import bilinear_at, upsampled_at
from .verify import ArrivalCheck

Points = Sequence[Sequence[float]]


@dataclass
class DragStep:
    """What the callback sees after each tracking step. `render()` synthesises the current image."""

    step: int
    points: list[list[float]]  # [[x, y], ...] image pixels
    targets: list[list[float]]
    loss: float | None
    distances: list[float]
    ws: torch.Tensor
    render: Callable[[], torch.Tensor]


class DragDiverged(ArithmeticError):
    """The loss or the latent became NaN or infinite (a learning rate far too large, say)."""


@dataclass
class DragResult:
    ws: torch.Tensor  # [1, num_ws, w_dim], detached
    points: list[list[float]]  # final handle positions [[x, y], ...] by DragGAN's tracker
    steps: int  # optimiser steps taken
    trajectory: list[dict[str, Any]]
    image: torch.Tensor | None  # [1, C, R, R] in about [-1, 1]
    stopped_by: str = "max_steps"  # 'distance' | 'max_steps' | 'callback' | 'lost'
    targets: list[list[float]] = field(default_factory=list)
    # Independent check (config.verify): LK positions of the handles, start render -> final render.
    measured: list[list[float]] | None = None
    measured_ok: list[bool] | None = None
    lost: list[bool] = field(default_factory=list)  # handles the tracker lost and could not recover
    events: list[dict[str, Any]] = field(default_factory=list)  # checks, recoveries, losses

    @property
    def mean_distance(self) -> float:
        return sum(math.dist(p, t) for p, t in zip(self.points, self.targets)) / max(len(self.points), 1)


def _check_points(handles: Points, targets: Points, res: int) -> tuple[torch.Tensor, torch.Tensor]:
    h = torch.as_tensor(handles, dtype=torch.float64).reshape(-1, 2)
    t = torch.as_tensor(targets, dtype=torch.float64).reshape(-1, 2)
    if len(h) == 0 or h.shape != t.shape:
        raise ValueError(f"need the same number (>= 1) of handles and targets, got {len(h)} and {len(t)}")
    for name, p in (("handle", h), ("target", t)):
        if (p < 0).any() or (p > res - 1).any() or not torch.isfinite(p).all():
            raise ValueError(f"{name} points must lie inside the {res}x{res} image (0..{res - 1})")
    return h, t


def _disc_offsets(radius: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer (dy, dx) offsets with |(dy, dx)| < radius."""
    r = int(math.ceil(radius)) + 1
    d = torch.arange(-r, r + 1)
    dy, dx = torch.meshgrid(d, d, indexing="ij")
    keep = (dy.square() + dx.square()).double().sqrt() < radius
    return dy[keep], dx[keep]


def _disc_pixels(py: int, px: int, radius: float, grid: str, res: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixels q with |q - p| < radius, on the integer grid or on the official linspace(0, R, R) grid."""
    if grid == "pixel":
        dy, dx = _disc_offsets(radius)
        rows, cols = dy + py, dx + px
    else:
        coords = torch.linspace(0, res, res)
        lo_y, hi_y = max(py - int(radius) - 2, 0), min(py + int(radius) + 3, res)
        lo_x, hi_x = max(px - int(radius) - 2, 0), min(px + int(radius) + 3, res)
        yy, xx = torch.meshgrid(coords[lo_y:hi_y], coords[lo_x:hi_x], indexing="ij")
        dist = ((yy - py) ** 2 + (xx - px) ** 2) ** 0.5
        ri, ci = torch.where(dist < radius)
        rows, cols = ri + lo_y, ci + lo_x
    keep = (rows >= 0) & (rows < res) & (cols >= 0) & (cols < res)
    return rows[keep], cols[keep]


class _Features:
    """Access to the upsampled feature map: sparse (exact taps) or the full resized map."""

    def __init__(self, feat: torch.Tensor, res: int, sparse: bool):
        self.size = (res, res)
        self.low = feat
        self.full = None if sparse else F.interpolate(feat, [res, res], mode="bilinear")

    def at(self, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        if self.full is None:
            return upsampled_at(self.low, rows, cols, self.size)
        return self.full[0][:, rows, cols]

    def sample(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if self.full is None:
            return bilinear_at(self.low, y, x, self.size)
        h, w = self.size
        grid = torch.stack([x / (w - 1) * 2 - 1, y / (h - 1) * 2 - 1], dim=-1).to(self.full.dtype)[None, None]
        return F.grid_sample(self.full, grid, align_corners=True)[0, :, 0]


def _track(feats: _Features, refs: torch.Tensor, points: list[list[int]], r2: int, res: int, metric: str
           ) -> tuple[list[list[int]], list[float]]:
    """Nearest neighbour of each handle's initial feature in its (2 r2 + 1)^2 patch; points are [row, col].

    Every handle's patch is read in one gather (the cost stays flat in the number of handles). Also
    returns each match's feature distance (how good the best match is)."""
    rows, cols, owner, boxes = [], [], [], []
    for j, (py, px) in enumerate(points):
        up, down = max(py - r2, 0), min(py + r2 + 1, res)
        left, right = max(px - r2, 0), min(px + r2 + 1, res)
        rr, cc = torch.meshgrid(torch.arange(up, down), torch.arange(left, right), indexing="ij")
        rows.append(rr.reshape(-1))
        cols.append(cc.reshape(-1))
        owner.append(torch.full((rr.numel(),), j))
        boxes.append((up, left, right - left, rr.numel()))
    vals = feats.at(torch.cat(rows), torch.cat(cols))  # [C, P] for every patch at once
    diff = vals - refs[:, torch.cat(owner).to(refs.device)]
    dist = diff.abs().sum(0) if metric == "l1" else torch.linalg.norm(diff, dim=0)
    out, best = [], []
    for (up, left, width, _), d in zip(boxes, torch.split(dist, [b[3] for b in boxes])):
        idx = int(torch.argmin(d))
        out.append([idx // width + up, idx % width + left])
        best.append(float(d[idx]))
    return out, best


def drag(G: torch.nn.Module, ws: torch.Tensor, handles: Points, targets: Points, *, mask: torch.Tensor | None = None,
         config: DragConfig | None = None, callback: Callable[[DragStep], bool | None] | None = None,
         image_resolution: int | None = None) -> DragResult:
    """Move `handles` to `targets` ([[x, y], ...] image pixels) by optimising the W+ latent `ws` [1, num_ws, w_dim].

    `mask` ([R, R], 1 = movable) keeps features outside it close to the start. `callback(step)` runs
    after each tracking step; returning True stops the loop. A chained edit passes `result.ws` back in.
    `image_resolution`: render the images (checks, previews, the result) as the skip generator's RGB at this
    size, for a generator tuned only that far (PTI's `max_resolution`); points stay in G's pixels.
    """
    with freed_memory_kept(worth_keeping(image_resolution or G.img_resolution)):
        loop = _DragLoop(G, ws, handles, targets, mask, config or DragConfig(), image_resolution)
        while True:
            feat = loop.features()  # 1. the generator's features at the current latent
            done = loop.track(feat)  # 2. point tracking (and the independent check when it matters)
            loss = None if done else loop.motion_loss(feat)  # 3. motion supervision (+ the mask term)
            loop.record(loss)
            if loop.tell(callback, done) or done or loop.step >= loop.cfg.max_steps:
                break
            loop.update(loss)  # 4. one Adam step on the latent
        return loop.result()


def _xy(points: list[list[float]]) -> list[list[float]]:
    """[row, col] -> [x, y] (and back: the swap is its own inverse)."""
    return [[float(p[1]), float(p[0])] for p in points]


class _DragLoop:
    """The DragGAN loop's state; its methods run in the loop's order (see `drag`)."""

    def __init__(self, G: torch.nn.Module, ws: torch.Tensor, handles: Points, targets: Points,
                 mask: torch.Tensor | None, cfg: DragConfig, image_resolution: int | None = None):
        res = G.img_resolution
        self.cap = image_resolution if image_resolution is not None and image_resolution < res else None
        h_xy, t_xy = _check_points(handles, targets, res)
        if ws.ndim != 3 or ws.shape[0] != 1 or ws.shape[1] != G.num_ws:
            raise ValueError(f"ws must have shape [1, {G.num_ws}, {G.w_dim}], got {list(ws.shape)}")
        self.G, self.cfg, self.res, self.device = G, cfg, res, ws.device
        self.ws0 = ws.detach().clone()
        self.rows = min(cfg.optimize_rows, G.num_ws)
        self.opt_w = self.ws0[:, :self.rows if cfg.w_plus else 1].clone().requires_grad_(True)
        self.optim = torch.optim.Adam([self.opt_w], lr=cfg.lr)
        self.fix = None
        if mask is not None:
            mask = torch.as_tensor(mask, dtype=torch.float32, device=self.device)
            if mask.shape != (res, res):
                raise ValueError(f"mask must be {res}x{res}, got {tuple(mask.shape)}")
            self.fix = (1 - mask.clamp(0, 1))[None, None]
        self.r1, self.r2 = cfg.radii_for(res)
        self.block = cfg.feature_block_for(list(G.synthesis.block_resolutions))
        self.stop_d = cfg.stop_distance_for(len(h_xy), res)
        self.jump = cfg.jump_for(res)
        self.points = [[round(float(p[1])), round(float(p[0]))] for p in h_xy]  # [row, col]
        self.tgt = [[float(t[1]), float(t[0])] for t in t_xy]
        self.refs = self.feat0 = self.fd = None
        self.trajectory: list[dict[str, Any]] = []
        self.stopped_by = "max_steps"
        self.step = 0
        self.w_cur: torch.Tensor | None = None
        self.checker = ArrivalCheck(h_xy.tolist(), self.start_image, cfg.verify_tolerance, cfg.max_recoveries, res)
        self.windowed = (cfg.windowed and self.fix is None and not cfg.full_synthesis and cfg.noise_mode != "random"
                         and hasattr(G.synthesis, "features_in"))
        self.stale = False  # a recovery moved a handle, maybe outside this step's windows: read them again

    # ---- renders -------------------------------------------------------------------------------------------
    def current_ws(self) -> torch.Tensor:
        head = self.opt_w if self.cfg.w_plus else self.opt_w.expand(-1, self.rows, -1)
        return torch.cat([head, self.ws0[:, self.rows:]], dim=1)

    def render(self) -> torch.Tensor:
        with torch.no_grad():
            return self._synthesis(self.current_ws().detach())

    def start_image(self) -> torch.Tensor:
        with torch.no_grad():
            return self._synthesis(self.ws0)

    def _synthesis(self, ws: torch.Tensor) -> torch.Tensor:
        if self.cap is None:  # a generator that takes no max_resolution (the tests' synthetic one) renders whole
            return self.G.synthesis(ws, noise_mode=self.cfg.noise_mode)
        return self.G.synthesis(ws, noise_mode=self.cfg.noise_mode, max_resolution=self.cap)

    # ---- 1. features ---------------------------------------------------------------------------------------
    def features(self) -> torch.Tensor:
        cfg, G = self.cfg, self.G
        self.w_cur = w_cur = self.current_ws()
        if not torch.isfinite(w_cur).all():
            raise DragDiverged(f"the latent became non-finite at step {self.step}; lower the learning rate")
        with torch.set_grad_enabled(self.step < cfg.max_steps), torch.autocast(
                self.device.type, torch.bfloat16, enabled=cfg.precision == "bf16"):
            if cfg.full_synthesis:  # the official code's cost: whole image every step
                feat = G.synthesis(w_cur, noise_mode=cfg.noise_mode, return_features=True)[1][self.block]
            elif self.windowed:
                feat = G.synthesis.features_in(w_cur, self.block, self._boxes(), noise_mode=cfg.noise_mode)
            else:
                feat = G.synthesis.features(w_cur, upto=self.block, noise_mode=cfg.noise_mode)[-1]
        return feat.float()

    def _boxes(self) -> list[tuple[int, int, int, int]]:
        """Feature-map boxes holding every tap this step reads: the tracking patch around each handle, then the
        motion disc (and its unit shift) around wherever in that patch the handle lands."""
        size = self.G.synthesis.block_resolutions[self.block]
        scale, reach = size / self.res, self.r2 + self.r1 + 2

        def span(p: int) -> tuple[int, int]:  # low-resolution taps of image pixels p - reach .. p + reach
            return (math.floor((p - reach + 0.5) * scale - 0.5) - 1, math.floor((p + reach + 0.5) * scale - 0.5) + 3)

        return [span(py) + span(px) for py, px in self.points]

    # ---- 2. tracking -----------------------------------------------------------------------------------------
    def track(self, feat: torch.Tensor) -> bool:
        """Move the points to their nearest features; True when every handle is within the stop distance."""
        cfg, res = self.cfg, self.res
        with torch.no_grad():
            if self.refs is None:
                self.feat0 = feat.detach()
                f0 = _Features(self.feat0, res, cfg.sparse)
                self.refs = f0.at(torch.tensor([p[0] for p in self.points]), torch.tensor([p[1] for p in self.points]))
            self.fd = _Features(feat.detach(), res, cfg.sparse)
            before = [list(p) for p in self.points]
            self.points, self.match = _track(self.fd, self.refs, self.points, self.r2, res, cfg.tracking)
        done = self._arrived()
        if cfg.verify and self.step > 0:
            jumped = [j for j in range(len(self.points)) if math.dist(before[j], self.points[j]) > self.jump]
            if (done or jumped) and self.checker.check("arrival" if done else "jump", self.step, self.render(),
                                                       self.points, self._renew):
                done = self._arrived()
        return done

    def _arrived(self) -> bool:
        self.dists = [math.hypot(t[0] - p[0], t[1] - p[1]) for p, t in zip(self.points, self.tgt)]
        return all(d <= self.stop_d for d in self.dists)

    def _renew(self, j: int) -> None:
        """Handle j was re-found by the check: its reference feature is read again where it now is."""
        if self.windowed:  # it may lie outside this step's windows: read them again around the points as they are now
            with torch.no_grad():
                self.fd = _Features(self.features().detach(), self.res, self.cfg.sparse)
            self.stale = True
        self.refs[:, j] = self.fd.at(torch.tensor([self.points[j][0]]), torch.tensor([self.points[j][1]]))[:, 0]

    # ---- 3. motion supervision ---------------------------------------------------------------------------------
    def motion_loss(self, feat: torch.Tensor) -> torch.Tensor | None:
        cfg, res = self.cfg, self.res
        if self.step >= cfg.max_steps:
            return None
        if self.stale:  # a recovery moved a handle after this step's features were read
            feat, self.stale = self.features(), False
        fa = _Features(feat, res, cfg.sparse)
        loss = _motion_loss(fa, self.points, self.tgt, self.r1, res, cfg.disc_grid, min(1.0, self.stop_d), self.device)
        if self.fix is not None:
            diff = F.interpolate(feat - self.feat0, [res, res], mode="bilinear") * self.fix
            loss = loss + cfg.lambda_mask * diff.abs().mean()
        if not torch.isfinite(loss):
            raise DragDiverged(f"the drag loss became non-finite at step {self.step}; lower the learning rate")
        return loss

    def record(self, loss: torch.Tensor | None) -> None:
        self.trajectory.append({"step": self.step, "points": _xy(self.points),
                                "loss": None if loss is None else float(loss.detach()), "distances": self.dists,
                                "mean_distance": sum(self.dists) / len(self.dists), "match": self.match})

    def tell(self, callback: Callable[[DragStep], bool | None] | None, done: bool) -> bool:
        """Decide how the loop would end here, and ask the callback (True: stop now)."""
        if done:
            self.stopped_by = "lost" if any(self.checker.lost) else "distance"
        elif self.step >= self.cfg.max_steps:
            self.stopped_by = "max_steps"
        last = self.trajectory[-1]
        if callback is not None and callback(DragStep(self.step, last["points"], _xy(self.tgt), last["loss"],
                                                      self.dists, self.w_cur.detach(), self.render)):
            if not done and self.step < self.cfg.max_steps:
                self.stopped_by = "callback"
            return True
        return False

    # ---- 4. the optimiser ----------------------------------------------------------------------------------------
    def update(self, loss: torch.Tensor) -> None:
        self.optim.zero_grad(set_to_none=True)
        loss.backward()
        self.optim.step()
        self.step += 1

    def result(self) -> DragResult:
        final_ws = self.current_ws().detach()
        if not torch.isfinite(final_ws).all():
            raise DragDiverged(f"the latent became non-finite at step {self.step}; lower the learning rate")
        image = self.render()
        if self.cfg.verify:
            self.checker.check("final", self.step, image, self.points, self._renew, recover=False)
            if self.stopped_by == "distance" and any(self.checker.lost):
                self.stopped_by = "lost"
        m = self.checker.measured
        return DragResult(final_ws, _xy(self.points), self.step, self.trajectory, image, self.stopped_by,
                          _xy(self.tgt), m.points if m else None, m.ok if m else None, self.checker.lost,
                          self.checker.events)


def _motion_loss(feats: _Features, points: list[list[int]], targets: list[list[float]], r1: int, res: int,
                 grid: str, arrived: float, device: torch.device) -> torch.Tensor:
    """Sum over handles of mean |F(q) - F(q + d)| over the disc, F(q) detached (paper eq. 1).

    Handles within `arrived` px of their target are left out: a unit step would overshoot them. Every
    handle's disc is sampled in one gather, so the cost stays flat in the number of handles.
    """
    rows, cols, dys, dxs, owner, counts = [], [], [], [], [], []
    for (py, px), (ty, tx) in zip(points, targets):
        d = torch.tensor([ty - py, tx - px], dtype=torch.float32)
        norm = float(torch.linalg.norm(d))
        if norm <= arrived:
            continue
        d = d / (norm + 1e-7)
        r, c = _disc_pixels(py, px, r1, grid, res)
        if len(r) == 0:
            continue
        rows.append(r)
        cols.append(c)
        dys.append(d[0].expand(len(r)))
        dxs.append(d[1].expand(len(r)))
        owner.append(torch.full((len(r),), len(counts)))
        counts.append(len(r))
    if not counts:
        return torch.zeros((), device=device)
    rows_t, cols_t = torch.cat(rows), torch.cat(cols)
    here = feats.at(rows_t, cols_t).detach()
    shifted = feats.sample(rows_t.to(torch.float32) + torch.cat(dys), cols_t.to(torch.float32) + torch.cat(dxs))
    per_pixel = (shifted - here).abs().sum(0)  # [N]
    per_handle = torch.zeros(len(counts), device=per_pixel.device, dtype=per_pixel.dtype)
    per_handle = per_handle.index_add(0, torch.cat(owner).to(per_pixel.device), per_pixel)
    sizes = torch.tensor(counts, device=per_pixel.device, dtype=per_pixel.dtype) * here.shape[0]
    return (per_handle / sizes).sum()
