"""Recurrent kernels, batch first, with torch.nn's weight layout (``weight_ih_l{k}{_reverse}``
..., gates i, f, g, o for lstm and r, z, n for gru) read from ``weights`` under ``prefix``.

Each layer and direction first projects the whole input sequence in one matmul; only the
recurrent part (``h @ W_hhᵀ`` and the gates) runs step by step. ``scan`` runs a generated
cell function along time from a zero state.
"""

from __future__ import annotations

import numpy as np

from ._table import helper, kernel
from .activation import sigmoid
from .dense import _affine


@helper
def _recurrent(x, weights, prefix, inits, layers, bidirectional, step):
    """Run ``step(gx_t, h, *state, w_hh_t, b_hh) -> (h, *state)`` over layers and directions;
    ``w_hh_t`` is W_hhᵀ, made contiguous once (a small-batch matmul with a transposed operand
    is about twice as slow in OpenBLAS).

    ``inits``: the initial states, each [layers*directions, N, H] or None (zeros). Returns the
    last layer's sequence [N, T, directions*H] and each final state [layers*directions, N, H].
    """
    n, t = x.shape[:2]
    dirs = 2 if bidirectional else 1
    finals = [[] for _ in inits]
    for layer in range(layers):
        outs = []
        for d in range(dirs):
            name = f"l{layer}" + ("_reverse" if d else "")
            w_ih, w_hh = weights[f"{prefix}weight_ih_{name}"], weights[f"{prefix}weight_hh_{name}"]
            b_ih, b_hh = weights[f"{prefix}bias_ih_{name}"], weights[f"{prefix}bias_hh_{name}"]
            hidden, w_hh_t = w_hh.shape[1], np.ascontiguousarray(w_hh.T)
            gx = _affine(x, w_ih, b_ih)  # every time step's input projection, in one matmul
            k = layer * dirs + d
            state = [np.zeros((n, hidden), dtype=gx.dtype) if s is None else s[k] for s in inits]
            ys = np.empty((n, t, hidden), dtype=gx.dtype)
            for i in (range(t - 1, -1, -1) if d else range(t)):
                state = step(gx[:, i], *state, w_hh_t, b_hh)
                ys[:, i] = state[0]
            outs.append(ys)
            for acc, s in zip(finals, state):
                acc.append(s)
        x = outs[0] if dirs == 1 else np.concatenate(outs, axis=-1)
    return (x, *(np.stack(acc) for acc in finals))


@helper
def _rnn_tanh_step(gx, h, w_hh_t, b_hh):
    return (np.tanh(gx + h @ w_hh_t + b_hh),)


@helper
def _rnn_relu_step(gx, h, w_hh_t, b_hh):
    return (np.maximum(gx + h @ w_hh_t + b_hh, 0),)


@helper
def _lstm_step(gx, h, c, w_hh_t, b_hh):
    # the gates in one buffer, and one sigmoid over all four (the g quarter's is unused): a
    # step's arrays are small, so the number of NumPy calls is what costs
    z = h @ w_hh_t
    z += gx
    z += b_hh
    q = z.shape[-1] // 4
    s = sigmoid(z)
    c = s[:, q:2 * q] * c + s[:, :q] * np.tanh(z[:, 2 * q:3 * q])
    return s[:, 3 * q:] * np.tanh(c), c


@helper
def _gru_step(gx, h, w_hh_t, b_hh):
    # torch's GRU: n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), h' = (1 - z) * n + z * h
    xr, xz, xn = np.split(gx, 3, axis=-1)
    hr, hz, hn = np.split(h @ w_hh_t + b_hh, 3, axis=-1)
    r, z = sigmoid(xr + hr), sigmoid(xz + hz)
    n = np.tanh(xn + r * hn)
    return ((1 - z) * n + z * h,)


@kernel("rnn")
def rnn(x, weights, prefix, h0=None, layers=1, bidirectional=False, nonlinearity="tanh"):
    """Elman RNN, h' = tanh(W_ih x + b_ih + W_hh h + b_hh) (or relu); returns (seq, h)."""
    step = _rnn_tanh_step if nonlinearity == "tanh" else _rnn_relu_step
    return _recurrent(x, weights, prefix, [h0], layers, bidirectional, step)


@kernel("lstm")
def lstm(x, weights, prefix, h0=None, c0=None, layers=1, bidirectional=False):
    """LSTM; returns (seq, h, c)."""
    return _recurrent(x, weights, prefix, [h0, c0], layers, bidirectional, _lstm_step)


@kernel("gru")
def gru(x, weights, prefix, h0=None, layers=1, bidirectional=False):
    """GRU; returns (seq, h)."""
    return _recurrent(x, weights, prefix, [h0], layers, bidirectional, _gru_step)


@kernel("scan")
def scan(x, *fixed, cell, weights, prefix, hidden, states=1, init=False):
    """Run ``cell(weights, prefix, x_t, *fixed, *state)`` along dim 1 of x [N, T, I] from zero
    states (or, with ``init``, from the last ``states`` tensors given), with the same ``fixed``
    inputs at every step; stack the first state of each step: [N, T, hidden]."""
    n, t = x.shape[:2]
    state = tuple(np.zeros((n, hidden), dtype=x.dtype) for _ in range(states))
    if init:
        fixed, state = fixed[:-states], fixed[-states:]
    ys = []
    for i in range(t):
        out = cell(weights, prefix, x[:, i], *fixed, *state)
        state = out if isinstance(out, tuple) else (out,)
        ys.append(state[0])
    return np.stack(ys, axis=1)
