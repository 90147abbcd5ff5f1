"""BG/NBD and Gamma-Gamma fits: ours (lavka.analytics.lifetime) against lifetimes 0.11.3 on the same data.

    .venv/bin/python bench/lifetime_fit.py --customers 1000000

No database. Simulates customers from known BG/NBD and Gamma-Gamma parameters (whole days, first
purchases spread over two years), then in the same run times:

- ours: ``bgnbd.fit(x, t_x, T)`` on the raw per-customer arrays (collapsing into weighted unique rows
  is part of the timed call) and ``gamma_gamma.fit(x, mean_value)``;
- lifetimes: ``BetaGeoFitter().fit(x, t_x, T)`` on the raw arrays (how it is normally called), and
  again on our collapsed rows with ``weights=`` (its fastest use; the collapse is not counted), and
  ``GammaGammaFitter().fit`` on the customers with x >= 1. Both with penalizer 0 and lifetimes'
  default tolerance. Note lifetimes' ``fit`` also computes a Hessian for standard errors; ours does
  not (``bgnbd.standard_errors`` is a separate call, timed too for reference).

Each side gets one small untimed warm-up fit first. Prints wall-clock seconds, the speed ratios and
the largest relative parameter difference, plus process CPU seconds (steadier when other work shares
the machine), and exits 1 when a target is missed: ours >= 10x faster (wall clock) than lifetimes on
the raw arrays and parameters equal to 1e-3 (relative). ``compare()`` is the importable part
(bench/analytics.py uses it).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lavka.analytics.lifetime import bgnbd, gamma_gamma, simulate, summary  # noqa: E402
from lavka.analytics.lifetime.bgnbd import BgNbdParams  # noqa: E402
from lavka.analytics.lifetime.gamma_gamma import GammaGammaParams  # noqa: E402

SPEED_TARGET = 10.0
PARAM_TOLERANCE = 1e-3
TRUE_BGNBD = BgNbdParams(0.4, 60.0, 0.8, 2.5)  # days: a repeat order every ~5 months while alive
TRUE_GG = GammaGammaParams(6.0, 4.0, 1500.0)  # mean order value p gamma / (q - 1) = 3000


def simulate_customers(n: int, seed: int = 1, days: float = 730.0):
    """``(x, t_x, T, mean_value)`` for ``n`` customers, whole days, first purchases uniform over ``days``."""
    rng = np.random.default_rng(seed)
    x, t_x, T = simulate.summaries(rng, TRUE_BGNBD, rng.uniform(0.0, days, n), whole_days=True)
    nu = rng.gamma(TRUE_GG.q, 1.0 / TRUE_GG.gamma, n)
    # Mean of x Gamma(p, nu) order values = Gamma(p x, rate nu x); rounded to kopecks.
    mean_value = np.where(x > 0, rng.gamma(TRUE_GG.p * np.maximum(x, 1), 1.0 / (nu * np.maximum(x, 1))), 0.0)
    mean_value = np.where(x > 0, np.maximum(np.round(mean_value, 2), 0.01), 0.0)
    return x, t_x, T, mean_value


_CPU: dict[str, float] = {}


def _timed(fn, key: str):
    """(value, wall seconds); the process CPU seconds go to _CPU[key] (less noisy on a busy machine)."""
    cpu, start = time.process_time(), time.perf_counter()
    value = fn()
    wall = time.perf_counter() - start
    _CPU[key] = time.process_time() - cpu
    return value, wall


def _max_rel(ours: dict, theirs: dict, names) -> float:
    return max(abs(ours[k] - theirs[k]) / abs(theirs[k]) for k in names)


def _warm_up(x, t_x, T, fitter_class) -> None:
    """One small fit each, untimed: first calls pay for imports and SciPy/autograd set-up."""
    n = min(x.size, 2000)
    bgnbd.fit(x[:n], t_x[:n], T[:n])
    with warnings.catch_warnings(), contextlib.suppress(Exception):  # only a warm-up
        warnings.simplefilter("ignore")
        fitter_class().fit(x[:n], t_x[:n], T[:n])


def compare(x, t_x, T, mean_value=None, *, raw: bool = True, weighted: bool = True) -> dict[str, Any]:
    """Fit both implementations on the same data and time them (wall clock, seconds).

    Returns ``{"customers", "unique_rows", "repeat_customers", "ours": {...}, "lifetimes": {...},
    "speedup": {...}, "max_rel_diff": {...}, "targets_met": bool, "notes": [...]}`` where the
    ``ours``/``lifetimes`` dicts hold ``bgnbd`` / ``gamma_gamma`` parameter dicts and ``*_seconds``,
    plus flat ``ours_seconds`` / ``lifetimes_seconds`` (both models) and ``max_parameter_difference``.
    ``raw=False`` skips lifetimes on the raw arrays (slow at 1M); ``mean_value=None`` skips Gamma-Gamma.
    """
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    x, t_x, T = (np.asarray(v, dtype=np.float64) for v in (x, t_x, T))
    notes: list[str] = []
    out: dict[str, Any] = {"customers": int(x.size), "repeat_customers": int(np.count_nonzero(x > 0))}
    ours: dict[str, Any] = {}
    theirs: dict[str, Any] = {}

    _warm_up(x, t_x, T, BetaGeoFitter)
    _CPU.clear()
    params, ours["bgnbd_seconds"] = _timed(lambda: bgnbd.fit(x, t_x, T), "ours_bgnbd")
    ours["bgnbd"] = params.as_dict()
    _, ours["standard_errors_seconds"] = _timed(
        lambda: bgnbd.standard_errors(params, x, t_x, T), "ours_standard_errors"
    )

    (ux, ut, uT, w, _), collapse_seconds = _timed(lambda: summary.collapse(x, t_x, T), "collapse")
    out["unique_rows"] = int(ux.size)
    out["collapse_seconds"] = collapse_seconds

    def lifetimes_bgnbd(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitter = BetaGeoFitter(penalizer_coef=0.0).fit(*args, **kwargs)
        return {k: float(fitter.params_[k]) for k in ("r", "alpha", "a", "b")}

    names = ("r", "alpha", "a", "b")
    diffs = []
    if weighted:
        try:
            theirs["bgnbd_weighted"], theirs["bgnbd_weighted_seconds"] = _timed(
                lambda: lifetimes_bgnbd(ux, ut, uT, weights=w), "lifetimes_bgnbd_weighted"
            )
            diffs.append(_max_rel(ours["bgnbd"], theirs["bgnbd_weighted"], names))
        except Exception as exc:  # lifetimes raises ConvergenceError when BFGS stops early
            notes.append(f"lifetimes BG/NBD (weighted) failed: {exc!r}")
    if raw:
        try:
            theirs["bgnbd"], theirs["bgnbd_seconds"] = _timed(
                lambda: lifetimes_bgnbd(x, t_x, T), "lifetimes_bgnbd"
            )
            diffs.append(_max_rel(ours["bgnbd"], theirs["bgnbd"], names))
        except Exception as exc:
            notes.append(f"lifetimes BG/NBD failed: {exc!r}")
    max_rel: dict[str, float | None] = {"bgnbd": max(diffs) if diffs else None}
    speedup: dict[str, float | None] = {
        "bgnbd": theirs["bgnbd_seconds"] / ours["bgnbd_seconds"] if "bgnbd_seconds" in theirs else None,
        "bgnbd_weighted": (
            theirs["bgnbd_weighted_seconds"] / ours["bgnbd_seconds"]
            if "bgnbd_weighted_seconds" in theirs
            else None
        ),
    }

    if mean_value is not None:
        m = np.asarray(mean_value, dtype=np.float64)
        rep = x > 0
        gg, ours["gamma_gamma_seconds"] = _timed(lambda: gamma_gamma.fit(x, m), "ours_gamma_gamma")
        ours["gamma_gamma"] = gg.as_dict()
        try:

            def lifetimes_gg():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    fitter = GammaGammaFitter(penalizer_coef=0.0).fit(x[rep], m[rep])
                return {
                    "p": float(fitter.params_["p"]),
                    "q": float(fitter.params_["q"]),
                    "gamma": float(fitter.params_["v"]),
                }

            theirs["gamma_gamma"], theirs["gamma_gamma_seconds"] = _timed(
                lifetimes_gg, "lifetimes_gamma_gamma"
            )
            max_rel["gamma_gamma"] = _max_rel(ours["gamma_gamma"], theirs["gamma_gamma"], ("p", "q", "gamma"))
            speedup["gamma_gamma"] = theirs["gamma_gamma_seconds"] / ours["gamma_gamma_seconds"]
        except Exception as exc:
            notes.append(f"lifetimes Gamma-Gamma failed: {exc!r}")

    out.update(ours=ours, lifetimes=theirs, speedup=speedup, max_rel_diff=max_rel, notes=notes)
    out["cpu_seconds"] = dict(_CPU)
    # Flat totals for bench/analytics.py: BG/NBD + Gamma-Gamma; lifetimes on the raw rows, else on weights.
    lifetimes_bg = theirs.get("bgnbd_seconds", theirs.get("bgnbd_weighted_seconds"))
    out["ours_seconds"] = ours["bgnbd_seconds"] + ours.get("gamma_gamma_seconds", 0.0)
    out["lifetimes_seconds"] = (
        None if lifetimes_bg is None else lifetimes_bg + theirs.get("gamma_gamma_seconds", 0.0)
    )
    known = [v for v in max_rel.values() if v is not None]
    out["max_parameter_difference"] = max(known) if known else None
    reference = speedup["bgnbd"] if speedup["bgnbd"] is not None else speedup["bgnbd_weighted"]
    out["targets_met"] = bool(
        reference is not None
        and reference >= SPEED_TARGET
        and all(v is not None and v <= PARAM_TOLERANCE for v in max_rel.values())
    )
    return out


def _print(result: dict[str, Any]) -> None:
    ours, theirs, speed, diff = result["ours"], result["lifetimes"], result["speedup"], result["max_rel_diff"]
    print(
        f"customers {result['customers']}, repeat customers {result['repeat_customers']}, "
        f"unique (x, t_x, T) rows {result['unique_rows']} (collapse {result['collapse_seconds']:.2f} s)"
    )
    print(f"{'fit':34s} {'ours s':>8s} {'lifetimes s':>12s} {'ratio':>7s} {'max rel diff':>13s}")

    def row(label, mine, other, ratio, d):
        other_s = f"{other:12.2f}" if other is not None else f"{'-':>12s}"
        ratio_s = f"{ratio:7.1f}" if ratio is not None else f"{'-':>7s}"
        d_s = f"{d:13.1e}" if d is not None else f"{'-':>13s}"
        print(f"{label:34s} {mine:8.2f} {other_s} {ratio_s} {d_s}")

    row(
        "BG/NBD, lifetimes on raw rows",
        ours["bgnbd_seconds"],
        theirs.get("bgnbd_seconds"),
        speed["bgnbd"],
        diff["bgnbd"],
    )
    row(
        "BG/NBD, lifetimes on our weights",
        ours["bgnbd_seconds"],
        theirs.get("bgnbd_weighted_seconds"),
        speed["bgnbd_weighted"],
        diff["bgnbd"],
    )
    if "gamma_gamma_seconds" in ours:
        row(
            "Gamma-Gamma (customers with x>=1)",
            ours["gamma_gamma_seconds"],
            theirs.get("gamma_gamma_seconds"),
            speed.get("gamma_gamma"),
            diff.get("gamma_gamma"),
        )
    print(f"(ours + BG/NBD standard errors: {ours['bgnbd_seconds'] + ours['standard_errors_seconds']:.2f} s)")
    cpu = result["cpu_seconds"]
    for model in ("bgnbd", "bgnbd_weighted", "gamma_gamma"):
        mine = cpu.get("ours_" + model.replace("_weighted", ""))
        other = cpu.get("lifetimes_" + model)
        if mine and other:
            print(f"CPU seconds {model}: ours {mine:.2f}, lifetimes {other:.2f}, ratio {other / mine:.1f}")
    p = ours["bgnbd"]
    print(
        f"ours BG/NBD: r={p['r']:.6g} alpha={p['alpha']:.6g} a={p['a']:.6g} b={p['b']:.6g}"
        f" log-likelihood={p['log_likelihood']:.2f}"
    )
    for key in ("bgnbd", "bgnbd_weighted"):
        if key in theirs:
            q = theirs[key]
            print(f"lifetimes {key}: r={q['r']:.6g} alpha={q['alpha']:.6g} a={q['a']:.6g} b={q['b']:.6g}")
    if "gamma_gamma" in ours:
        g = ours["gamma_gamma"]
        print(f"ours Gamma-Gamma: p={g['p']:.6g} q={g['q']:.6g} gamma={g['gamma']:.6g}")
        if "gamma_gamma" in theirs:
            h = theirs["gamma_gamma"]
            print(f"lifetimes Gamma-Gamma: p={h['p']:.6g} q={h['q']:.6g} gamma={h['gamma']:.6g}")
    for note in result["notes"]:
        print("note:", note)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-raw", action="store_true", help="skip lifetimes on the raw arrays")
    args = parser.parse_args(argv)

    x, t_x, T, mean_value = simulate_customers(args.customers, args.seed)
    result = compare(x, t_x, T, mean_value, raw=not args.skip_raw)
    _print(result)
    speed = result["speedup"]["bgnbd"] or result["speedup"]["bgnbd_weighted"]
    if result["targets_met"]:
        print(f"bench: targets met (BG/NBD {speed:.1f}x faster, parameters within {PARAM_TOLERANCE:g})")
        return 0
    print(f"bench: target missed (need >= {SPEED_TARGET:g}x and parameters within {PARAM_TOLERANCE:g})")
    return 1


if __name__ == "__main__":
    sys.exit(main())
