"""Pivotal Tuning Inversion: a W pivot (stage 1), then generator fine-tuning around it (stage 2).

Both stages checkpoint their full state (latent, noise maps, Adam state, RNG, tuned weights, loss
log) every `checkpoint_every` steps through an atomic write, so a run killed at any point resumes
from the last checkpoint and ends bit-identical to an uninterrupted run on the same machine.
"""
from __future__ import annotations

import copy
import hashlib
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from tqdm import tqdm

from dragedit.common.atomic import write_with
from dragedit.common.memory import freed_memory_kept, worth_keeping
from dragedit.common.threads import compute_signature

from .config import PTIConfig
from .losses import Perceptual, perceptual_loss, ssim

CHECKPOINT_NAME = "pti_checkpoint.pt"


@dataclass
class InversionResult:
    w: torch.Tensor  # [1, num_ws, w_dim] pivot
    G: torch.nn.Module  # tuned generator
    metrics: dict[str, Any]
    loss_log: list[dict[str, Any]]
    losses_used: dict[str, str]
    resolution: int  # the size G was inverted and tuned at (its skip RGB there; below G's own with max_resolution)
    w_companions: torch.Tensor | None = None  # [K, num_ws, w_dim]: the companions' pivots, when it had some

    @property
    def cap(self) -> int | None:
        """`max_resolution` for renders of the tuned generator (None: its full resolution)."""
        return None if self.resolution >= self.G.img_resolution else self.resolution


@dataclass(frozen=True)
class Companions:
    """Other views of the target's face (a clip's sampled frames) that the generator is tuned on beside it: STIT's
    shared tuning. Each gets its own W pivot, fitted from the target's with the base generator, and every tuning
    step fits the target and one companion in turn, so a step costs the same however many there are."""

    targets: tuple[torch.Tensor, ...]  # [1, 3, R, R] in [-1, 1], at the generator's size, like the target
    # Adam steps for each companion's pivot (from the target's, at the coarse pivot size), and a companion's loss
    # against the target's in each tuning step: PTIConfig's defaults, the one place they are set
    pivot_steps: int = PTIConfig.companion_pivot_steps
    weight: float = PTIConfig.companion_weight

    def identity(self) -> dict[str, Any]:
        return {"targets": [_fingerprint(t) for t in self.targets], "pivot_steps": self.pivot_steps,
                "weight": self.weight}


def psnr(x: torch.Tensor, y: torch.Tensor) -> float:
    """PSNR in dB of images in [-1, 1], measured on the 8-bit values a user would save."""
    a = (x.detach().float() * 127.5 + 128).clamp(0, 255).round()
    b = (y.detach().float() * 127.5 + 128).clamp(0, 255).round()
    mse = float((a - b).square().mean())
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


def image_metrics(img: torch.Tensor, target: torch.Tensor, lpips_net: torch.nn.Module | None) -> dict[str, float | None]:
    with torch.no_grad():
        out = {"psnr": psnr(img, target), "ssim": float(ssim(img.float(), target.float())[0])}
        out["lpips"] = float(lpips_net(img.float(), target.float())[0]) if lpips_net is not None else None
    return out


def _fingerprint(t: torch.Tensor) -> str:
    return hashlib.sha256(t.detach().cpu().contiguous().numpy().tobytes()).hexdigest()


def _downsample(img: torch.Tensor, size: int) -> torch.Tensor:
    return F.interpolate(img, size=(size, size), mode="area") if img.shape[-1] > size else img


def work_resolution(G: torch.nn.Module, cfg: PTIConfig) -> int | None:
    """The `max_resolution` PTI renders G at: None for the full image."""
    cap = cfg.max_resolution
    if cap is None or cap >= G.img_resolution:
        return None
    return G.synthesis.resolution_at(cap)


def _render(G: torch.nn.Module, ws: torch.Tensor, cfg: PTIConfig, max_resolution: int | None) -> torch.Tensor:
    """G's image at `ws` (const noise), under bf16 autocast when `cfg.precision` asks for it; float32 out."""
    with torch.autocast(ws.device.type, torch.bfloat16, enabled=cfg.precision == "bf16"):
        img = G.synthesis(ws, noise_mode="const", max_resolution=max_resolution)
    return img.float()


def _noise_reg(noise_bufs: list[torch.Tensor]) -> torch.Tensor:
    """The projector's noise autocorrelation penalty over an image pyramid."""
    reg = 0.0
    for v in noise_bufs:
        noise = v[None, None]
        while True:
            reg = reg + (noise * torch.roll(noise, shifts=1, dims=3)).mean() ** 2
            reg = reg + (noise * torch.roll(noise, shifts=1, dims=2)).mean() ** 2
            if noise.shape[2] <= 8:
                break
            noise = F.avg_pool2d(noise, kernel_size=2)
    return reg


def _lr_at(cfg: PTIConfig, t: float) -> float:
    ramp = min(1.0, (1.0 - t) / cfg.lr_rampdown)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    return cfg.pivot_lr * ramp * min(1.0, t / cfg.lr_rampup)


class _Checkpointer:
    def __init__(self, work_dir: Path | None, identity: dict[str, Any]):
        self.path = work_dir / CHECKPOINT_NAME if work_dir else None
        self.identity = identity

    def load(self) -> dict[str, Any] | None:
        if self.path is None or not self.path.exists():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception:
            return None  # unreadable: start over rather than trust it
        return state if state.get("identity") == self.identity else None

    def save(self, state: dict[str, Any]) -> None:
        if self.path is not None:
            state = {**state, "identity": self.identity}
            write_with(self.path, lambda tmp: torch.save(state, tmp))


def checkpoint_threads(work_dir: str | os.PathLike) -> int | None:
    """The CPU thread count a checkpoint left in `work_dir` was computed with (a resume must use the same)."""
    path = Path(work_dir) / CHECKPOINT_NAME
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        return int(state["identity"]["compute"]["threads"])
    except Exception:  # noqa: BLE001 - none, unreadable or not a CPU checkpoint: nothing to continue
        return None


def invert(G: torch.nn.Module, target: torch.Tensor, *, config: PTIConfig | None = None,
           work_dir: str | os.PathLike | None = None, progress: bool = True, base_id: str = "",
           warn: Callable[[str], None] | None = None,
           step_hook: Callable[[str, int], None] | None = None,
           companions: Companions | None = None) -> InversionResult:
    """Invert `target` ([1, 3, R, R] in [-1, 1]) into G. `G` itself is not modified.

    With `work_dir`, state is checkpointed there and a later call with the same inputs resumes.
    `base_id` names the base generator (e.g. its file hash) so a checkpoint is never reused across generators.
    With `companions`, the generator is tuned on them too (the pivot returned is still the target's).
    """
    cfg = config or PTIConfig()
    device = target.device
    target = target.to(torch.float32)
    if target.shape[-1] != G.img_resolution or target.shape[-2] != G.img_resolution:
        raise ValueError(f"target must be {G.img_resolution}x{G.img_resolution}, got {tuple(target.shape[-2:])}")
    loss_pivot = perceptual_loss("vgg", cfg.allow_download, warn).to(device)
    loss_tune = perceptual_loss("alex", cfg.allow_download, warn).to(device)
    losses_used = {"pivot": loss_pivot.name, "tune": loss_tune.name}
    identity = {"config": cfg.result_dict(), "target": _fingerprint(target), "base": base_id,
                "resolution": G.img_resolution, "losses": losses_used,
                "compute": compute_signature(device)}  # never resumed with another thread count
    if companions is not None and companions.targets:
        identity["companions"] = companions.identity()
    else:
        companions = None
    run = _Run(cfg, _Checkpointer(Path(work_dir) if work_dir else None, identity), progress, step_hook)
    state = run.ckpt.load() or {"stage": "pivot", "step": 0, "log": []}
    run.timings, run.log = dict(state.get("timings", {})), list(state["log"])
    cap = work_resolution(G, cfg)
    with freed_memory_kept(worth_keeping(cap or G.img_resolution)):  # else each step maps its activations afresh
        if state["stage"] == "pivot":  # stage 1
            w_pivot = _fit_pivot(G, target, state, loss_pivot, run)
            state = {"stage": "companions" if companions else "tune", "step": 0, "log": run.log,
                     "w_pivot": w_pivot.cpu(), "timings": run.timings}
            run.ckpt.save(state)
        if state["stage"] == "companions":  # stage 1b: the companions' pivots
            t0 = time.perf_counter()
            state = {**state, "stage": "tune", "timings": run.timings,
                     "w_companions": _companion_pivots(G, state["w_pivot"].to(device), companions, loss_pivot,
                                                       cfg).cpu()}
            run.clock("companions", t0)
            run.ckpt.save(state)
        Gt, steps = _tune(G, target, state, loss_tune, run, companions)  # stage 2
    pivot_run = sum(e["stage"] == "pivot" for e in run.log)
    metrics = {"timings": run.timings, "pivot_steps_run": pivot_run, "tune_steps_run": steps,
               "resolution": cap or G.img_resolution, **({"companions": len(companions.targets)} if companions else {})}
    w_comp = state["w_companions"].to(device) if companions else None
    return InversionResult(state["w_pivot"].to(device), Gt, metrics, run.log, losses_used, cap or G.img_resolution,
                           w_comp)


@dataclass
class _Run:
    """What both stages share: the settings, the checkpoint, the log and timings, and who listens."""

    cfg: PTIConfig
    ckpt: _Checkpointer
    progress: bool
    step_hook: Callable[[str, int], None] | None
    log: list[dict[str, Any]] = None  # type: ignore[assignment]
    timings: dict[str, float] = None  # type: ignore[assignment]

    def clock(self, stage: str, t0: float) -> float:
        """Add the time since `t0` to the stage's timing; returns now."""
        now = time.perf_counter()
        self.timings[f"{stage}_s"] = self.timings.get(f"{stage}_s", 0.0) + now - t0
        return now


def _pivot_start(G: torch.nn.Module, cfg: PTIConfig, state: dict[str, Any], device: torch.device):
    """The projector's starting point (w_avg, random noise maps), or where a checkpoint left it."""
    Gp = copy.deepcopy(G).eval().requires_grad_(False)
    w_avg, w_std = Gp.mean_w(cfg.w_avg_samples, seed=123)
    w_avg, w_std = w_avg.to(device), float(w_std)
    noise_named = [(n, b) for n, b in Gp.synthesis.named_buffers() if n.endswith("noise_const")]
    noise_bufs = [b for _, b in noise_named]
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
    rows = G.num_ws if cfg.pivot_space == "w+" else 1
    w_opt = w_avg[:, None, :].repeat(1, rows, 1).clone()
    if "w_opt" in state:
        w_opt = state["w_opt"].to(device)
        for (n, b) in noise_named:
            b.copy_(state["noise"][n].to(device))
        gen.set_state(state["rng"])
    else:
        for b in noise_bufs:
            b.copy_(torch.randn(b.shape, generator=gen).to(device))
    w_opt.requires_grad_(True)
    for b in noise_bufs:
        b.requires_grad_(True)
    optim = torch.optim.Adam([w_opt] + noise_bufs, betas=(0.9, 0.999), lr=cfg.pivot_lr)
    if "optim" in state:
        optim.load_state_dict(state["optim"])
    return Gp, w_opt, w_std, noise_named, gen, optim


def _pivot_phase(step: int, log: list[dict[str, Any]], cfg: PTIConfig, coarse: int | None,
                 fine_from: int | None) -> tuple[int | None, bool]:
    """(the step the fine phase starts at, or None; whether the pivot is done) before `step`. The fine phase
    (full resolution) starts `pivot_fine_steps` before the end, or when the coarse phase plateaus."""
    if coarse is None:
        return None, _plateau(log, "pivot", cfg)
    if fine_from is None and (step >= cfg.pivot_steps - cfg.pivot_fine_steps or _plateau(log, "pivot", cfg)):
        if not cfg.pivot_fine_steps:
            return None, True
        fine_from = step
    return fine_from, fine_from is not None and step >= fine_from + cfg.pivot_fine_steps


def _fit_pivot(G: torch.nn.Module, target: torch.Tensor, state: dict[str, Any], loss_fn: Perceptual,
               run: _Run) -> torch.Tensor:
    """Stage 1, the W pivot: the StyleGAN2-ADA projector as PTI runs it (optionally coarse first)."""
    cfg, log, device = run.cfg, run.log, target.device
    Gp, w_opt, w_std, noise_named, gen, optim = _pivot_start(G, cfg, state, device)
    noise_bufs = [b for _, b in noise_named]
    rows = w_opt.shape[1]
    cap = work_resolution(G, cfg)
    coarse = max(4, (cap or G.img_resolution) >> cfg.pivot_skip_blocks) if cfg.pivot_skip_blocks else None
    to_target: dict[int, Callable[[torch.Tensor], torch.Tensor]] = {}  # distance to the target at each size
    fine_from = next((e["step"] for e in log if e["stage"] == "pivot" and e.get("fine")), None)  # a resumed run
    t0 = time.perf_counter()
    with tqdm(total=cfg.pivot_steps, initial=state["step"], desc="PTI pivot", disable=not run.progress,
              unit="step") as bar:  # closed on an error too, so the error line stands alone
        for step in range(state["step"], cfg.pivot_steps):
            fine_from, done = _pivot_phase(step, log, cfg, coarse, fine_from)
            if done:
                break
            t = step / cfg.pivot_steps
            noise_scale = w_std * cfg.noise_start * max(0.0, 1.0 - t / cfg.noise_ramp) ** 2
            lr = _lr_at(cfg, t)
            for group in optim.param_groups:
                group["lr"] = lr
            w_noise = torch.randn(w_opt.shape, generator=gen).to(device) * noise_scale
            ws = (w_opt + w_noise).expand(-1, G.num_ws, -1) if rows == 1 else w_opt + w_noise
            fine = coarse is None or fine_from is not None
            synth = _downsample(_render(Gp, ws, cfg, cap if fine else coarse), cfg.loss_size)
            if synth.shape[-1] not in to_target:
                with torch.no_grad():
                    to_target[synth.shape[-1]] = loss_fn.against(_downsample(target, synth.shape[-1]))
            dist = to_target[synth.shape[-1]](synth).sum()
            loss = dist + _noise_reg(noise_bufs) * cfg.noise_reg_weight
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            with torch.no_grad():
                for b in noise_bufs:
                    b -= b.mean()
                    b *= b.square().mean().rsqrt()
            log.append({"stage": "pivot", "step": step, "loss": float(loss.detach()), "perceptual": float(dist.detach()),
                        "lr": lr, **({"fine": True} if fine and coarse is not None else {})})
            bar.update(1)
            bar.set_postfix(loss=f"{log[-1]['perceptual']:.4f}")
            if run.step_hook:
                run.step_hook("pivot", step)
            if (step + 1) % cfg.checkpoint_every == 0 and step + 1 < cfg.pivot_steps:
                t0 = run.clock("pivot", t0)
                run.ckpt.save({"stage": "pivot", "step": step + 1, "log": log, "w_opt": w_opt.detach().cpu(),
                               "noise": {n: b.detach().cpu() for n, b in noise_named}, "rng": gen.get_state(),
                               "optim": optim.state_dict(), "timings": run.timings})
    run.clock("pivot", t0)
    return w_opt.detach().expand(-1, G.num_ws, -1).clone() if rows == 1 else w_opt.detach().clone()


def _companion_pivots(G: torch.nn.Module, w_pivot: torch.Tensor, companions: Companions, loss_fn: Perceptual,
                      cfg: PTIConfig) -> torch.Tensor:
    """Each companion's W pivot ([K, num_ws, w_dim]), fitted from the target's with the base generator at the
    coarse pivot size (the companions only steer the tuning; their pivots need not be as exact)."""
    from .follow import follow_pivot

    cap = work_resolution(G, cfg)
    size = max(4, (cap or G.img_resolution) >> cfg.pivot_skip_blocks)
    fit_cap = G.synthesis.resolution_at(size) if size < G.img_resolution else None
    out = []
    for t in companions.targets:
        small = _downsample(t.float(), min(size, cfg.loss_size))
        with torch.no_grad():
            distance = loss_fn.against(small)
        out.append(follow_pivot(G, small, w_pivot, steps=companions.pivot_steps, lr=cfg.pivot_lr, distance=distance,
                                max_resolution=fit_cap, loss_size=cfg.loss_size))
    return torch.cat(out)


def _tune(G: torch.nn.Module, target: torch.Tensor, state: dict[str, Any], loss_fn: Perceptual, run: _Run,
          companions: Companions | None = None):
    """Stage 2, pivotal tuning: the generator's synthesis weights fitted around the pivot -> (tuned G, steps).
    With companions, each step renders the pivot and one companion's pivot (in turn) in one batch."""
    cfg, log, device = run.cfg, run.log, target.device
    w_pivot = state["w_pivot"].to(device)
    cap = work_resolution(G, cfg)
    target = _downsample(target, cap or G.img_resolution)
    to_target = loss_fn.against(target)
    w_comp = state["w_companions"].to(device) if companions else None
    comp_targets = [_downsample(t.float(), cap or G.img_resolution) for t in companions.targets] if companions else []
    to_comp = [loss_fn.against(t) for t in comp_targets]
    Gt = copy.deepcopy(G)
    params = [p for p in Gt.synthesis.parameters()]
    Gt.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    optim = torch.optim.Adam(params, lr=cfg.tune_lr)
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed + 1)
    if "G_synthesis" in state:
        Gt.synthesis.load_state_dict({k: v.to(device) for k, v in state["G_synthesis"].items()})
        optim.load_state_dict(state["optim"])
        gen.set_state(state["rng"])
    t0 = time.perf_counter()
    step = state["step"]
    with tqdm(total=cfg.tune_steps, initial=step, desc="PTI tuning", disable=not run.progress, unit="step") as bar:
        while not state.get("tune_done", False) and step < cfg.tune_steps and not _plateau(log, "tune", cfg):
            if w_comp is None:
                img = _render(Gt, w_pivot, cfg, cap)
            else:
                k = step % len(comp_targets)
                img = _render(Gt, torch.cat([w_pivot, w_comp[k:k + 1]]), cfg, cap)
            l2 = F.mse_loss(img[:1], target)
            perc = to_target(img[:1]).mean()
            loss = cfg.l2_weight * l2 + cfg.lpips_weight * perc
            entry = {"stage": "tune", "step": step, "loss": 0.0, "l2": float(l2.detach()),
                     "perceptual": float(perc.detach())}
            done = entry["perceptual"] <= cfg.lpips_threshold
            if w_comp is not None:
                c_perc = to_comp[k](img[1:]).mean()
                loss = loss + companions.weight * (cfg.l2_weight * F.mse_loss(img[1:], comp_targets[k]) +
                                                   cfg.lpips_weight * c_perc)
                entry["companion"] = k
                entry["companion_perceptual"] = float(c_perc.detach())
                done = done and entry["companion_perceptual"] <= cfg.lpips_threshold
            entry["loss"] = float(loss.detach())
            if done:
                log.append({**entry, "early_stop": True})
                break
            if cfg.locality and step % cfg.locality_interval == 0:
                loss = loss + _locality_loss(G, Gt, w_pivot, cfg, loss_fn, gen, cap)
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            log.append(entry)
            step += 1
            bar.update(1)
            bar.set_postfix(perceptual=f"{entry['perceptual']:.4f}")
            if run.step_hook:
                run.step_hook("tune", step - 1)
            if step % cfg.checkpoint_every == 0 and step < cfg.tune_steps:
                t0 = run.clock("tune", t0)
                run.ckpt.save({"stage": "tune", "step": step, "log": log, "w_pivot": w_pivot.cpu(),
                               "rng": gen.get_state(), "optim": optim.state_dict(), "timings": run.timings,
                               **({"w_companions": w_comp.cpu()} if w_comp is not None else {}),
                               "G_synthesis": {k: v.detach().cpu() for k, v in Gt.synthesis.state_dict().items()}})
    run.clock("tune", t0)
    return Gt.eval().requires_grad_(False), step


def _plateau(log: list[dict[str, Any]], stage: str, cfg: PTIConfig) -> bool:
    """The stage's loss stopped improving: its last `plateau_window` steps' mean loss is within `plateau_tol`
    (relative) of the window before. Decided from the log alone, so a resumed run decides the same."""
    n = cfg.plateau_window
    if not n:
        return False
    losses = [e["loss"] for e in log if e["stage"] == stage and "early_stop" not in e]
    if len(losses) < 2 * n:
        return False
    before, last = sum(losses[-2 * n:-n]) / n, sum(losses[-n:]) / n
    return before - last < cfg.plateau_tol * abs(before)


def _locality_loss(G: torch.nn.Module, Gt: torch.nn.Module, w_pivot: torch.Tensor, cfg: PTIConfig,
                   loss_fn: Perceptual, gen: torch.Generator, cap: int | None) -> torch.Tensor:
    """PTI's locality regulariser: keep tuned and original outputs close at latents around the pivot."""
    device = w_pivot.device
    z = torch.randn(1, G.z_dim, generator=gen).to(device)
    with torch.no_grad():
        w_z = G.mapping(z)
        direction = w_z - w_pivot
        w_loc = w_pivot + cfg.locality_alpha * direction / direction.norm()
        old = _render(G, w_loc, cfg, cap)
    new = _render(Gt, w_loc, cfg, cap)
    return cfg.locality_l2_weight * F.mse_loss(new, old) + cfg.locality_lpips_weight * loss_fn(new, old).mean()
