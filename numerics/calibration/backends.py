r"""A Llama-style decoder with random weights over a paged KV pool, in numpy or torch.

Timing an iteration does not depend on the weight values, so the weights are random (no downloads).
The architecture is Llama's: token embedding; per layer, RMSNorm, grouped-query attention with
rotary position embeddings (RoPE) and a SwiGLU MLP, each with a residual connection; a final
RMSNorm and the LM head, whose argmax is the next token:

.. math::

    \mathrm{RMSNorm}(x) = \frac{x}{\sqrt{\overline{x^2} + \epsilon}} \odot g,\qquad
    \mathrm{SwiGLU}(h) = W_d\big(\mathrm{silu}(W_g h) \odot W_u h\big),

    \mathrm{attn}(q_j) = \sum_{i \le j} \mathrm{softmax}_i\big(q_j\cdot k_i/\sqrt{d_h}\big)\,v_i,

with :math:`q, k` rotated by the angle :math:`p\,\theta^{-2m/d_h}` in their m-th pair of
coordinates at position p.

The KV cache is a pool of ``n_blocks`` blocks of ``block_size`` tokens (vLLM's PagedAttention
layout): a sequence owns a list of blocks (its block table), token p of a sequence lives in slot
``table[p // b] * b + p % b`` of the flat pool. :class:`BlockAllocator` is the bookkeeping;
a backend stores the pool arrays and runs :meth:`Backend.step`, one *mixed* iteration: some
sequences prefill their whole context (positions 0..n−1, causal self-attention), the others decode
one token each (attending over their cached tokens and the new one); all tokens share each
matrix multiplication, so the weights are read once per iteration.

* :class:`NumpyBackend` — float32 on the CPU; every operation written out (tiny sizes in CI);
* :class:`TorchBackend` — bf16 on CUDA (float32 on a torch CPU), decode attention batched over
  a gathered, padded view of the block tables with ``scaled_dot_product_attention``. torch is
  imported only when it is built (the optional ``gpu`` extra).

Examples
--------
>>> be = make_backend("cpu", MODEL_PRESETS["tiny"], n_blocks=8, block_size=4, seed=0)
>>> out = be.step(prefill={0: [1, 2, 3]}, decode={})
>>> be.length(0), sorted(out)
(3, [0])
>>> _ = be.step(prefill={}, decode={0: out[0]})
>>> be.length(0), be.allocator.blocks_used
(4, 1)
"""

from __future__ import annotations

import platform
from dataclasses import asdict, dataclass

import numpy as np

from numerics.calibration.fit import CalibrationError

__all__ = [
    "BACKENDS",
    "MODEL_PRESETS",
    "Backend",
    "BlockAllocator",
    "ModelConfig",
    "NumpyBackend",
    "TorchBackend",
    "make_backend",
    "torch_available",
]

BACKENDS = ("numpy", "torch")
#: Decode attention in the torch backend gathers each sequence's blocks into a padded tensor; it
#: processes the decode batch in chunks of at most this many padded tokens, so that the transient
#: copy stays small (65,536 tokens × 32 heads × 128 × 2 bytes = 512 MiB for K, the same for V).
TORCH_ATTN_CHUNK_TOKENS = 65_536


@dataclass(frozen=True)
class ModelConfig:
    """Shape of a Llama-style decoder (no weights: they are random)."""

    vocab: int = 256
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    n_kv_heads: int = 2
    d_ff: int = 128
    rope_theta: float = 10_000.0
    norm_eps: float = 1e-5
    name: str = "custom"

    def __post_init__(self) -> None:
        for f in ("vocab", "d_model", "n_layers", "n_heads", "n_kv_heads", "d_ff"):
            v = getattr(self, f)
            if not isinstance(v, int | np.integer) or v < 1:
                raise CalibrationError(f"model config: {f} must be a positive integer, got {v!r}")
        if self.d_model % self.n_heads or self.n_heads % self.n_kv_heads:
            raise CalibrationError(
                "model config: d_model must be a multiple of n_heads and n_heads of n_kv_heads, got "
                f"d_model={self.d_model}, n_heads={self.n_heads}, n_kv_heads={self.n_kv_heads}"
            )
        if (self.d_model // self.n_heads) % 2:
            raise CalibrationError("model config: the head dimension must be even (RoPE rotates pairs)")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def n_params(self) -> int:
        """Number of weights (embedding and LM head untied)."""
        d, hd = self.d_model, self.head_dim
        attn = d * (self.n_heads * hd) * 2 + d * (self.n_kv_heads * hd) * 2
        layer = attn + 3 * d * self.d_ff + 2 * d
        return self.n_layers * layer + 2 * self.vocab * d + d

    def kv_bytes_per_token(self, dtype_bytes: int) -> int:
        """Bytes of KV cache per token: 2 (K and V) · layers · KV heads · head dim · dtype size."""
        return 2 * self.n_layers * self.n_kv_heads * self.head_dim * int(dtype_bytes)

    def to_dict(self) -> dict:
        return asdict(self) | {"head_dim": self.head_dim, "n_params": self.n_params}


MODEL_PRESETS = {
    # CI: real compute at toy sizes (~0.1 M weights)
    "tiny": ModelConfig(vocab=256, d_model=64, n_layers=2, n_heads=4, n_kv_heads=2, d_ff=128, name="tiny"),
    # a few M weights: the CPU probe without --quick
    "small": ModelConfig(vocab=1024, d_model=256, n_layers=4, n_heads=8, n_kv_heads=4, d_ff=704,
                         name="small"),
    # Llama-3.2-1B's shape (vocab cut to 32k): ~1.1 B weights, 32 KiB of bf16 KV per token
    "llama-1b": ModelConfig(vocab=32_000, d_model=2048, n_layers=16, n_heads=32, n_kv_heads=8,
                            d_ff=8192, rope_theta=500_000.0, name="llama-1b"),
    # Llama-2-7B's shape: ~6.7 B weights, 512 KiB of bf16 KV per token
    "llama2-7b": ModelConfig(vocab=32_000, d_model=4096, n_layers=32, n_heads=32, n_kv_heads=32,
                             d_ff=11_008, name="llama2-7b"),
}


class BlockAllocator:
    """Block tables of a paged KV pool: ``n_blocks`` blocks of ``block_size`` tokens.

    ``ensure(sid, tokens)`` grows a sequence's table to hold ``tokens`` tokens; ``free(sid)``
    returns its blocks. Freed blocks are reused last-in first-out.
    """

    def __init__(self, n_blocks: int, block_size: int) -> None:
        if n_blocks < 1 or block_size < 1:
            raise CalibrationError(f"a KV pool needs ≥ 1 block of ≥ 1 token, got {n_blocks} × {block_size}")
        self.n_blocks = int(n_blocks)
        self.block_size = int(block_size)
        self._free = list(range(self.n_blocks - 1, -1, -1))
        self.tables: dict[int, list[int]] = {}

    @property
    def blocks_used(self) -> int:
        return self.n_blocks - len(self._free)

    @property
    def capacity_tokens(self) -> int:
        return self.n_blocks * self.block_size

    def ensure(self, sid: int, tokens: int) -> None:
        table = self.tables.setdefault(sid, [])
        need = -(-int(tokens) // self.block_size) - len(table)
        if need > len(self._free):
            raise CalibrationError(
                f"KV pool exhausted: sequence {sid} needs {need} more blocks, {len(self._free)} free "
                f"of {self.n_blocks}; the scheduler must keep usage ≤ M"
            )
        for _ in range(max(0, need)):
            table.append(self._free.pop())

    def free(self, sid: int) -> None:
        self._free.extend(reversed(self.tables.pop(sid, [])))

    def slots(self, sid: int, start: int, stop: int) -> np.ndarray:
        """Flat pool slots of positions start..stop−1 of a sequence."""
        pos = np.arange(start, stop)
        table = np.asarray(self.tables[sid], dtype=np.int64)
        return table[pos // self.block_size] * self.block_size + pos % self.block_size


class Backend:
    """Common bookkeeping: a :class:`BlockAllocator` and the cached length of each sequence."""

    name = "base"

    def __init__(self, config: ModelConfig, n_blocks: int, block_size: int) -> None:
        if not isinstance(config, ModelConfig):
            raise CalibrationError(f"config must be a ModelConfig, got {config!r}")
        self.config = config
        self.allocator = BlockAllocator(n_blocks, block_size)
        self.lengths: dict[int, int] = {}

    def length(self, sid: int) -> int:
        """Tokens in the KV cache of sequence ``sid``."""
        return self.lengths.get(sid, 0)

    def free(self, sid: int) -> None:
        """Drop a sequence and return its blocks to the pool."""
        self.allocator.free(sid)
        self.lengths.pop(sid, None)

    def fake_fill(self, sid: int, length: int) -> None:
        """Give ``sid`` a cache of ``length`` tokens without computing them (for timing only)."""
        self.free(sid)
        self.allocator.ensure(sid, length)
        self.lengths[sid] = int(length)

    def _plan(self, prefill: dict, decode: dict):
        """Allocate and list the segments: (sid, tokens, start) in prefill-then-decode order."""
        segs = []
        for sid, toks in prefill.items():
            toks = np.asarray(toks, dtype=np.int64).ravel()
            if toks.size < 1:
                raise CalibrationError(f"prefill of sequence {sid}: give at least one token")
            if sid in decode:
                raise CalibrationError(f"sequence {sid} is both prefilled and decoded in one step")
            self.free(sid)
            segs.append((sid, toks, 0))
        for sid, tok in decode.items():
            if sid not in self.lengths:
                raise CalibrationError(f"sequence {sid} decodes before any prefill")
            segs.append((sid, np.asarray([tok], dtype=np.int64), self.lengths[sid]))
        for sid, toks, start in segs:
            self.allocator.ensure(sid, start + toks.size)
        return segs

    def step(self, prefill: dict, decode: dict) -> dict[int, int]:
        """One mixed iteration; returns the next token of every sequence in it."""
        raise NotImplementedError  # pragma: no cover

    def synchronize(self) -> None:
        """Wait for queued device work (a no-op on the CPU)."""

    def info(self) -> dict:
        return {"backend": self.name, "platform": platform.platform(), "numpy": np.__version__}


def _rope_tables(positions: np.ndarray, head_dim: int, theta: float) -> tuple[np.ndarray, np.ndarray]:
    inv = theta ** (-np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    ang = positions[:, None].astype(np.float64) * inv[None, :]
    return np.cos(ang).astype(np.float32), np.sin(ang).astype(np.float32)


def _rope(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """Rotate pairs (x[2m], x[2m+1]) of x[T, heads, hd] by the position angles."""
    x1, x2 = x[..., 0::2], x[..., 1::2]
    c, s = cos[:, None, :], sin[:, None, :]
    out = np.empty_like(x)
    out[..., 0::2] = x1 * c - x2 * s
    out[..., 1::2] = x1 * s + x2 * c
    return out


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def random_weights(config: ModelConfig, seed: int | None) -> dict[str, np.ndarray]:
    """Random float32 weights (normal, scaled 1/√fan-in; norm gains 1)."""
    rng = np.random.default_rng(seed)
    c = config
    d, hd = c.d_model, c.head_dim

    def lin(n_in, n_out):
        return (rng.standard_normal((n_in, n_out), dtype=np.float32) / np.sqrt(n_in)).astype(np.float32)

    w = {"embed": rng.standard_normal((c.vocab, d), dtype=np.float32),
         "final_norm": np.ones(d, np.float32), "lm_head": lin(d, c.vocab)}
    for i in range(c.n_layers):
        w |= {
            f"{i}.attn_norm": np.ones(d, np.float32), f"{i}.mlp_norm": np.ones(d, np.float32),
            f"{i}.wq": lin(d, c.n_heads * hd), f"{i}.wk": lin(d, c.n_kv_heads * hd),
            f"{i}.wv": lin(d, c.n_kv_heads * hd), f"{i}.wo": lin(c.n_heads * hd, d),
            f"{i}.w_gate": lin(d, c.d_ff), f"{i}.w_up": lin(d, c.d_ff), f"{i}.w_down": lin(c.d_ff, d),
        }
    return w


class NumpyBackend(Backend):
    """float32 numpy decoder; attention loops over the sequences of the step (reference)."""

    name = "numpy"
    dtype_bytes = 4

    def __init__(self, config: ModelConfig, n_blocks: int, block_size: int, seed: int | None = 0) -> None:
        super().__init__(config, n_blocks, block_size)
        self.w = random_weights(config, seed)
        slots = self.allocator.capacity_tokens
        shape = (config.n_layers, slots, config.n_kv_heads, config.head_dim)
        self.k_cache = np.zeros(shape, np.float32)
        self.v_cache = np.zeros(shape, np.float32)

    def _norm(self, x: np.ndarray, g: np.ndarray) -> np.ndarray:
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.config.norm_eps) * g

    def step(self, prefill: dict, decode: dict) -> dict[int, int]:
        segs = self._plan(prefill, decode)
        if not segs:
            return {}
        c, w, alloc = self.config, self.w, self.allocator
        hd, nh, nkv = c.head_dim, c.n_heads, c.n_kv_heads
        group = nh // nkv
        tokens = np.concatenate([t for _, t, _ in segs])
        positions = np.concatenate([np.arange(s, s + t.size) for _, t, s in segs])
        slots = np.concatenate([alloc.slots(sid, s, s + t.size) for sid, t, s in segs])
        cos, sin = _rope_tables(positions, hd, c.rope_theta)
        x = w["embed"][tokens]
        bounds = np.cumsum([0] + [t.size for _, t, _ in segs])
        scale = np.float32(1 / np.sqrt(hd))
        n_pre = len(prefill)
        dec = segs[n_pre:]
        if dec:  # decode: one query per sequence over its padded context (positions ≥ length masked)
            lens = np.array([s + 1 for _, _, s in dec])
            ctx_idx = np.zeros((len(dec), int(lens.max())), dtype=np.int64)
            for r, (sid, _, s) in enumerate(dec):
                ctx_idx[r, : s + 1] = alloc.slots(sid, 0, s + 1)
            pad = np.arange(ctx_idx.shape[1])[None, :] >= lens[:, None]  # [Bd, Lmax]
            rows = slice(int(bounds[n_pre]), int(bounds[-1]))
        for i in range(c.n_layers):
            h = self._norm(x, w[f"{i}.attn_norm"])
            q = _rope((h @ w[f"{i}.wq"]).reshape(-1, nh, hd), cos, sin)
            k = _rope((h @ w[f"{i}.wk"]).reshape(-1, nkv, hd), cos, sin)
            v = (h @ w[f"{i}.wv"]).reshape(-1, nkv, hd)
            self.k_cache[i, slots] = k
            self.v_cache[i, slots] = v
            att = np.empty_like(q)
            for j, (_, t, _) in enumerate(segs[:n_pre]):  # prefill: causal self-attention
                a, b = bounds[j], bounds[j + 1]
                kk = np.repeat(k[a:b], group, axis=1)
                vv = np.repeat(v[a:b], group, axis=1)
                scores = np.einsum("qhd,khd->hqk", q[a:b], kk) * scale
                scores = np.where(np.tri(t.size, dtype=bool)[None], scores, -np.inf)
                att[a:b] = np.einsum("hqk,khd->qhd", _softmax(scores), vv)
            if dec:
                kk = self.k_cache[i][ctx_idx]  # [Bd, Lmax, nkv, hd]
                vv = self.v_cache[i][ctx_idx]
                qd = q[rows].reshape(len(dec), nkv, group, hd)
                scores = np.einsum("bkgd,blkd->bkgl", qd, kk) * scale
                scores = np.where(pad[:, None, None, :], -np.inf, scores)
                att[rows] = np.einsum("bkgl,blkd->bkgd", _softmax(scores), vv).reshape(len(dec), nh, hd)
            x = x + att.reshape(-1, nh * hd) @ w[f"{i}.wo"]
            h = self._norm(x, w[f"{i}.mlp_norm"])
            gate = h @ w[f"{i}.w_gate"]
            silu = gate * (0.5 * (1 + np.tanh(0.5 * gate)))  # x·sigmoid(x), without overflow
            x = x + (silu * (h @ w[f"{i}.w_up"])) @ w[f"{i}.w_down"]
        last = self._norm(x[bounds[1:] - 1], w["final_norm"])
        logits = last @ w["lm_head"]
        nxt = np.argmax(logits, axis=-1)
        self.last_logits = {sid: logits[j] for j, (sid, _, _) in enumerate(segs)}
        out = {}
        for (sid, t, s), tok in zip(segs, nxt, strict=True):
            self.lengths[sid] = s + t.size
            out[sid] = int(tok)
        return out


def torch_available() -> bool:
    """True when torch can be imported."""
    import importlib.util

    return importlib.util.find_spec("torch") is not None


class TorchBackend(Backend):  # pragma: no cover - needs torch (the ``gpu`` extra); untested in CI
    """torch decoder: bf16 on CUDA (float32 on the CPU); batched paged decode attention."""

    name = "torch"

    def __init__(self, config: ModelConfig, n_blocks: int, block_size: int, seed: int | None = 0,
                 device: str = "cuda", dtype: str | None = None,
                 weights: dict[str, np.ndarray] | None = None) -> None:
        import torch

        super().__init__(config, n_blocks, block_size)
        self.torch = torch
        self.device = torch.device(device)
        if dtype is None:
            dtype = "bfloat16" if self.device.type == "cuda" else "float32"
        self.dtype = getattr(torch, dtype)
        self.dtype_bytes = torch.tensor([], dtype=self.dtype).element_size()
        c = config
        hd = c.head_dim
        if weights is not None:  # e.g. the NumpyBackend's, to compare the two numerically
            self.w = {k: torch.as_tensor(v).to(self.device, self.dtype) for k, v in weights.items()}
        else:
            gen = torch.Generator(device=self.device)
            gen.manual_seed(0 if seed is None else int(seed))

            def lin(n_in, n_out):
                t = torch.randn(n_in, n_out, generator=gen, device=self.device, dtype=torch.float32)
                return (t / n_in**0.5).to(self.dtype)

            ones = torch.ones(c.d_model, device=self.device, dtype=self.dtype)
            self.w = {"embed": torch.randn(c.vocab, c.d_model, generator=gen, device=self.device,
                                           dtype=torch.float32).to(self.dtype),
                      "final_norm": ones, "lm_head": lin(c.d_model, c.vocab)}
            for i in range(c.n_layers):
                self.w |= {
                    f"{i}.attn_norm": ones, f"{i}.mlp_norm": ones,
                    f"{i}.wq": lin(c.d_model, c.n_heads * hd), f"{i}.wk": lin(c.d_model, c.n_kv_heads * hd),
                    f"{i}.wv": lin(c.d_model, c.n_kv_heads * hd), f"{i}.wo": lin(c.n_heads * hd, c.d_model),
                    f"{i}.w_gate": lin(c.d_model, c.d_ff), f"{i}.w_up": lin(c.d_model, c.d_ff),
                    f"{i}.w_down": lin(c.d_ff, c.d_model),
                }
        slots = self.allocator.capacity_tokens
        shape = (c.n_layers, slots, c.n_kv_heads, hd)
        self.k_cache = torch.zeros(shape, device=self.device, dtype=self.dtype)
        self.v_cache = torch.zeros(shape, device=self.device, dtype=self.dtype)
        inv = c.rope_theta ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)
        self._inv_freq = inv.to(self.device)

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            self.torch.cuda.synchronize(self.device)

    def info(self) -> dict:
        torch = self.torch
        out = super().info() | {"torch": torch.__version__, "device": str(self.device),
                                "dtype": str(self.dtype).removeprefix("torch.")}
        if self.device.type == "cuda":
            props = torch.cuda.get_device_properties(self.device)
            out |= {"gpu_name": props.name, "cuda": torch.version.cuda,
                    "gpu_memory_bytes": int(props.total_memory),
                    "compute_capability": f"{props.major}.{props.minor}"}
        return out

    def _norm(self, x, g):
        xf = x.float()
        inv = self.torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.config.norm_eps)
        return (xf * inv).to(x.dtype) * g

    def _rope(self, x, cos, sin):
        x1, x2 = x[..., 0::2], x[..., 1::2]
        c, s = cos[:, None, :], sin[:, None, :]
        return self.torch.stack((x1 * c - x2 * s, x1 * s + x2 * c), dim=-1).flatten(-2)

    def step(self, prefill: dict, decode: dict) -> dict[int, int]:
        torch = self.torch
        F = torch.nn.functional
        segs = self._plan(prefill, decode)
        if not segs:
            return {}
        c, w, alloc, dev = self.config, self.w, self.allocator, self.device
        hd, nh, nkv = c.head_dim, c.n_heads, c.n_kv_heads
        group = nh // nkv
        n_pre = len(prefill)
        dec = segs[n_pre:]
        tokens = torch.as_tensor(np.concatenate([t for _, t, _ in segs]), device=dev)
        positions = np.concatenate([np.arange(s, s + t.size) for _, t, s in segs])
        slots = torch.as_tensor(np.concatenate([alloc.slots(sid, s, s + t.size) for sid, t, s in segs]),
                                device=dev)
        ang = torch.as_tensor(positions, device=dev, dtype=torch.float64)[:, None] * self._inv_freq[None, :]
        cos, sin = ang.cos().to(self.dtype), ang.sin().to(self.dtype)
        bounds = np.cumsum([0] + [t.size for _, t, _ in segs])
        n_pre_tok = int(bounds[n_pre])
        # decode: padded block tables, chunked so the gathered K/V stay small
        chunks = []
        if dec:
            b = alloc.block_size
            lens = np.array([s + 1 for _, _, s in dec])
            i0 = 0
            while i0 < len(dec):
                i1 = i0 + 1
                while i1 < len(dec) and (i1 + 1 - i0) * int(lens[i0:i1 + 1].max()) <= TORCH_ATTN_CHUNK_TOKENS:
                    i1 += 1
                nblk = -(-int(lens[i0:i1].max()) // b)
                table = np.zeros((i1 - i0, nblk), dtype=np.int64)
                for r, (sid, _, _) in enumerate(dec[i0:i1]):
                    tb = alloc.tables[sid][:nblk]
                    table[r, : len(tb)] = tb
                tbl = torch.as_tensor(table, device=dev)
                lens_t = torch.as_tensor(lens[i0:i1], device=dev)
                mask = torch.arange(nblk * b, device=dev)[None, :] < lens_t[:, None]
                chunks.append((i0, i1, tbl, mask[:, None, None, :]))
                i0 = i1
        x = w["embed"][tokens]
        with torch.inference_mode():
            for i in range(c.n_layers):
                h = self._norm(x, w[f"{i}.attn_norm"])
                q = self._rope((h @ w[f"{i}.wq"]).view(-1, nh, hd), cos, sin)
                k = self._rope((h @ w[f"{i}.wk"]).view(-1, nkv, hd), cos, sin)
                v = (h @ w[f"{i}.wv"]).view(-1, nkv, hd)
                kc, vc = self.k_cache[i], self.v_cache[i]
                kc.index_copy_(0, slots, k)
                vc.index_copy_(0, slots, v)
                att = torch.empty_like(q)
                for j in range(n_pre):  # prefill: causal self-attention over the new tokens
                    a, e = int(bounds[j]), int(bounds[j + 1])
                    qq = q[a:e].transpose(0, 1)[None]
                    kk = k[a:e].repeat_interleave(group, dim=1).transpose(0, 1)[None]
                    vv = v[a:e].repeat_interleave(group, dim=1).transpose(0, 1)[None]
                    att[a:e] = F.scaled_dot_product_attention(qq, kk, vv, is_causal=True)[0].transpose(0, 1)
                b = alloc.block_size
                for i0, i1, tbl, mask in chunks:
                    kk = kc.view(-1, b, nkv, hd)[tbl].flatten(1, 2)  # [n, L, nkv, hd]
                    vv = vc.view(-1, b, nkv, hd)[tbl].flatten(1, 2)
                    kk = kk.repeat_interleave(group, dim=2).transpose(1, 2)  # [n, nh, L, hd]
                    vv = vv.repeat_interleave(group, dim=2).transpose(1, 2)
                    rows = slice(n_pre_tok + i0, n_pre_tok + i1)
                    qq = q[rows][:, :, None, :]  # [n, nh, 1, hd]
                    att[rows] = F.scaled_dot_product_attention(qq, kk, vv, attn_mask=mask)[:, :, 0, :]
                x = x + att.reshape(-1, nh * hd) @ w[f"{i}.wo"]
                h = self._norm(x, w[f"{i}.mlp_norm"])
                x = x + (F.silu(h @ w[f"{i}.w_gate"]) * (h @ w[f"{i}.w_up"])) @ w[f"{i}.w_down"]
            last = self._norm(x[torch.as_tensor(bounds[1:] - 1, device=dev)], w["final_norm"])
            nxt = torch.argmax(last @ w["lm_head"], dim=-1).tolist()  # .tolist() synchronises
        out = {}
        for (sid, t, s), tok in zip(segs, nxt, strict=True):
            self.lengths[sid] = s + t.size
            out[sid] = int(tok)
        return out


def make_backend(device: str, config: ModelConfig, n_blocks: int, block_size: int,
                 seed: int | None = 0, backend: str | None = None) -> Backend:
    """A backend for ``device`` ("cpu" or "cuda[:i]"): numpy on the CPU unless ``backend="torch"``.

    Raises
    ------
    CalibrationError
        Unknown device or backend; torch missing for the torch backend; no CUDA device.
    """
    if backend is None:
        backend = "numpy" if device == "cpu" else "torch"
    if backend not in BACKENDS:
        raise CalibrationError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if not (device == "cpu" or device.startswith("cuda")):
        raise CalibrationError(f"device must be cpu or cuda, got {device!r}")
    if backend == "numpy":
        if device != "cpu":
            raise CalibrationError("the numpy backend runs on the CPU only; use --device cpu")
        return NumpyBackend(config, n_blocks, block_size, seed)
    if not torch_available():
        raise CalibrationError(
            "torch is not installed; the GPU probe needs the optional extra: pip install 'flowstab[gpu]' "
            "(or run the numpy backend with --device cpu)"
        )
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():  # pragma: no cover - needs torch
        raise CalibrationError("torch sees no CUDA device; run with --device cpu")
    return TorchBackend(config, n_blocks, block_size, seed, device=device)  # pragma: no cover
