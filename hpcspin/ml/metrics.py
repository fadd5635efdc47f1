"""Error measures for fields on unit spins (numpy; torch tensors are converted).

Only the part of a field transverse to S_i exerts a torque, so the errors
compare transverse components. Arrays are (..., N, 3) with sites on axis -2.
"""

from __future__ import annotations

import numpy as np

from hpcspin.dynamics.llg import transverse


def _np(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _perp(fields, spins) -> np.ndarray:
    """H - (H.S) S of numpy copies (:func:`hpcspin.dynamics.llg.transverse`)."""
    return transverse(_np(fields), spins=_np(spins))


def transverse_rmse(pred, target, spins) -> float:
    """Root-mean-square (over sites and components) of the transverse error."""
    d = _perp(_np(pred) - _np(target), spins)
    return float(np.sqrt(np.mean(d**2))) if d.size else float("nan")


def transverse_r2(pred, target, spins) -> float:
    """Coefficient of determination of the transverse field.

    1 - sum |p_perp - t_perp|^2 / sum |t_perp - mean(t_perp)|^2, with the mean per
    Cartesian component over all sites and configurations.
    """
    t = _perp(target, spins).reshape(-1, 3)
    p = _perp(pred, spins).reshape(-1, 3)
    ss_tot = np.sum((t - t.mean(axis=0)) ** 2)
    ss_res = np.sum((p - t) ** 2)
    return float(1.0 - ss_res / ss_tot) if ss_tot > 0 else float("nan")


def net_torque(spins, fields) -> np.ndarray:
    """sum_i S_i x H_i, shape (..., 3)."""
    return np.cross(_np(spins), _np(fields)).sum(axis=-2)


def net_torque_error(pred, target, spins) -> float:
    """Relative net-torque error: mean |T_pred - T| / mean |T| over configurations.

    NaN when the target's net torque vanishes (e.g. a conservative field with
    rotation-invariant energy: it conserves total spin).
    """
    tp = net_torque(spins, pred).reshape(-1, 3)
    tt = net_torque(spins, target).reshape(-1, 3)
    den = np.mean(np.linalg.norm(tt, axis=1))
    local = np.mean(np.linalg.norm(np.cross(_np(spins), _np(target)), axis=-1).sum(-1))
    num = np.mean(np.linalg.norm(tp - tt, axis=1))
    return float(num / den) if den > 1e-9 * local else float("nan")


def field_metrics(pred, target, spins, prefix: str = "") -> dict:
    """RMSE, R^2 and net-torque error of one field, keys prefixed by ``prefix``."""
    return {
        f"{prefix}rmse": transverse_rmse(pred, target, spins),
        f"{prefix}r2": transverse_r2(pred, target, spins),
        f"{prefix}torque_err": net_torque_error(pred, target, spins),
    }
