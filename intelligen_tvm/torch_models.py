"""Real transformer architectures in PyTorch with random weights: ViT, GPT-2, Llama and a BERT-like
encoder, at the true per-layer dimensions of named models (``VIT_TINY``, ``GPT2_SMALL``,
``TINYLLAMA``) or at any other ``Dims``.

Nothing can be downloaded where this project is developed, so compile time and numerics on "real
models" are measured on these: the same layers, shapes, norms, activations and masks as the
published models (timm's vit_tiny_patch16_224, Hugging Face's gpt2 and TinyLlama-1.1B), only the
weights are random. ``from_torch`` imports them. This module needs torch; nothing else in the
package imports it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

F = nn.functional


@dataclass(frozen=True)
class Dims:
    """Per-layer dimensions of a transformer stack."""

    hidden: int
    heads: int
    ffn: int
    layers: int
    eps: float = 1e-5         # of every norm
    kv_heads: int = 0         # grouped-query attention (Llama); 0: as many as ``heads``

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @property
    def kv(self) -> int:
        return self.kv_heads or self.heads


VIT_TINY = Dims(hidden=192, heads=3, ffn=768, layers=12, eps=1e-6)           # timm vit_tiny_patch16_224
GPT2_SMALL = Dims(hidden=768, heads=12, ffn=3072, layers=12, eps=1e-5)       # gpt2 (124M)
TINYLLAMA = Dims(hidden=2048, heads=32, ffn=5632, layers=22, eps=1e-5, kv_heads=4)  # TinyLlama-1.1B
GPT2_VOCAB, GPT2_POSITIONS = 50257, 1024
ROPE_THETA = 10000.0


class RmsNorm(nn.Module):
    """Llama's RMSNorm, written out as Hugging Face's LlamaRMSNorm does."""

    def __init__(self, hidden: int, eps: float) -> None:
        super().__init__()
        self.weight, self.eps = nn.Parameter(torch.ones(hidden)), eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotary(seq: int, head_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables [seq, head_dim] of the rotary embedding (Llama's, half-split layout)."""
    inv_freq = 1.0 / ROPE_THETA ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    freqs = torch.outer(torch.arange(seq, dtype=torch.float32), inv_freq)
    angles = torch.cat((freqs, freqs), -1)
    return angles.cos(), angles.sin()


def _rotate(x, cos, sin):
    half = x.shape[-1] // 2
    return x * cos + torch.cat((-x[..., half:], x[..., :half]), -1) * sin


class Attention(nn.Module):
    """Multi-head self-attention. BERT, GPT-2 and ViT: one fused QKV projection with bias. Llama
    (``llama=True``): bias-free q/k/v/o projections, grouped KV heads, rotary embedding."""

    def __init__(self, d: Dims, causal: bool, llama: bool = False) -> None:
        super().__init__()
        self.d, self.causal, self.llama = d, causal, llama
        self.sizes = [d.hidden, d.kv * d.head_dim, d.kv * d.head_dim]
        if llama:
            self.q, self.k, self.v = (nn.Linear(d.hidden, n, bias=False) for n in self.sizes)
        else:
            self.qkv = nn.Linear(d.hidden, sum(self.sizes))
        self.out = nn.Linear(d.hidden, d.hidden, bias=not llama)

    def forward(self, x, mask=None):
        batch, seq, _ = x.shape
        d = self.d
        q, k, v = (self.q(x), self.k(x), self.v(x)) if self.llama else self.qkv(x).split(self.sizes, -1)
        q = q.view(batch, seq, d.heads, d.head_dim).transpose(1, 2)
        k, v = (t.view(batch, seq, d.kv, d.head_dim).transpose(1, 2) for t in (k, v))
        if self.llama:
            cos, sin = rotary(seq, d.head_dim)
            q, k = _rotate(q, cos, sin), _rotate(k, cos, sin)
            k, v = (t.repeat_interleave(d.heads // d.kv, 1) for t in (k, v))
        scores = q @ k.transpose(-1, -2) / math.sqrt(d.head_dim)
        if self.causal:
            keep = torch.tril(torch.ones(seq, seq, dtype=torch.bool))
            scores = torch.where(keep, scores, torch.finfo(scores.dtype).min)
        if mask is not None:
            scores = scores + mask
        y = torch.softmax(scores, -1) @ v
        return self.out(y.transpose(1, 2).reshape(batch, seq, d.hidden))


class Mlp(nn.Module):
    """Feed-forward: GELU (``"none"``: erf, BERT and ViT; ``"tanh"``: GPT-2) or, with
    ``gelu=None``, Llama's bias-free SwiGLU."""

    def __init__(self, d: Dims, gelu: str | None) -> None:
        super().__init__()
        self.gelu = gelu
        bias = gelu is not None
        self.up, self.down = nn.Linear(d.hidden, d.ffn, bias=bias), nn.Linear(d.ffn, d.hidden, bias=bias)
        if gelu is None:
            self.gate = nn.Linear(d.hidden, d.ffn, bias=False)

    def forward(self, x):
        if self.gelu is None:
            return self.down(F.silu(self.gate(x)) * self.up(x))
        return self.down(F.gelu(self.up(x), approximate=self.gelu))


class Block(nn.Module):
    """One transformer layer: attention and MLP with residuals, pre-norm (GPT-2, ViT, Llama) or
    post-norm (BERT); LayerNorm, or RMSNorm for Llama."""

    def __init__(self, d: Dims, causal: bool, gelu: str | None, pre_norm: bool = True, llama: bool = False) -> None:
        super().__init__()
        self.pre_norm = pre_norm
        self.attn, self.mlp = Attention(d, causal, llama), Mlp(d, gelu)
        self.norms = nn.ModuleList(RmsNorm(d.hidden, d.eps) if llama else nn.LayerNorm(d.hidden, d.eps)
                                   for _ in range(2))

    def forward(self, x, mask=None):
        if self.pre_norm:
            x = x + self.attn(self.norms[0](x), mask)
            return x + self.mlp(self.norms[1](x))
        x = self.norms[0](x + self.attn(x, mask))
        return self.norms[1](x + self.mlp(x))


class ViT(nn.Module):
    """Vision Transformer (timm's VisionTransformer): 16x16 patch convolution, class token,
    learned position embedding, pre-norm blocks with erf GELU, final LayerNorm, linear head on the
    class token."""

    def __init__(self, d: Dims = VIT_TINY, image: int = 224, patch: int = 16, classes: int = 1000) -> None:
        super().__init__()
        tokens = (image // patch) ** 2 + 1
        self.patch = nn.Conv2d(3, d.hidden, patch, stride=patch)
        self.cls = nn.Parameter(torch.randn(1, 1, d.hidden) * 0.02)
        self.pos = nn.Parameter(torch.randn(1, tokens, d.hidden) * 0.02)
        self.blocks = nn.ModuleList(Block(d, causal=False, gelu="none") for _ in range(d.layers))
        self.norm, self.head = nn.LayerNorm(d.hidden, d.eps), nn.Linear(d.hidden, classes)

    def forward(self, images):
        x = self.patch(images).flatten(2).transpose(1, 2)
        x = torch.cat((self.cls.expand(x.shape[0], -1, -1), x), 1) + self.pos
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x)[:, 0])


class Gpt2(nn.Module):
    """GPT-2 (Hugging Face's GPT2LMHeadModel): token + position embeddings, pre-norm causal blocks
    with tanh GELU, final LayerNorm, language-model head tied to the token embedding."""

    def __init__(self, d: Dims = GPT2_SMALL, vocab: int = GPT2_VOCAB, positions: int = GPT2_POSITIONS) -> None:
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, d.hidden), nn.Embedding(positions, d.hidden)
        self.blocks = nn.ModuleList(Block(d, causal=True, gelu="tanh") for _ in range(d.layers))
        self.norm = nn.LayerNorm(d.hidden, d.eps)

    def forward(self, ids):
        x = self.tok(ids) + self.pos(torch.arange(ids.shape[1]))
        for block in self.blocks:
            x = block(x)
        return self.norm(x) @ self.tok.weight.T


class LlamaStack(nn.Module):
    """Llama decoder layers (Hugging Face's LlamaDecoderLayer: RMSNorm, rotary embedding,
    grouped-query causal attention, SwiGLU) and the final RMSNorm, on hidden states: the
    embedding and the LM head are plain gather and matmul, and their 32000-row table would be
    most of the weights."""

    def __init__(self, d: Dims = TINYLLAMA) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(Block(d, causal=True, gelu=None, llama=True) for _ in range(d.layers))
        self.norm = RmsNorm(d.hidden, d.eps)

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return self.norm(x)


class BertLike(nn.Module):
    """BertModel's layout: token + position embeddings and LayerNorm, post-norm encoder layers
    with erf GELU, an additive padding mask from ``attention_mask``."""

    def __init__(self, d: Dims, vocab: int, positions: int) -> None:
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, d.hidden), nn.Embedding(positions, d.hidden)
        self.norm = nn.LayerNorm(d.hidden, d.eps)
        self.blocks = nn.ModuleList(Block(d, causal=False, gelu="none", pre_norm=False) for _ in range(d.layers))

    def forward(self, ids, attention_mask):
        x = self.norm(self.tok(ids) + self.pos(torch.arange(ids.shape[1])))
        mask = (1.0 - attention_mask[:, None, None, :].float()) * -10000.0
        for block in self.blocks:
            x = block(x, mask)
        return x


NAMED = {"vit_tiny": VIT_TINY, "gpt2_small": GPT2_SMALL, "tinyllama": TINYLLAMA}


def instance(name: str, layers: int | None = None, batch: int = 1, seq: int = 128) -> tuple[nn.Module, tuple]:
    """``NAMED[name]``'s model in eval mode, random weights (seed 0), with ``layers`` layers
    (default: the named model's count) and example inputs: ViT images [batch, 3, 224, 224], GPT-2
    token ids [batch, seq], Llama hidden states [batch, seq, hidden]."""
    d = NAMED[name]
    if layers is not None:
        d = Dims(d.hidden, d.heads, d.ffn, layers, d.eps, d.kv_heads)
    torch.manual_seed(0)
    if name == "vit_tiny":
        return ViT(d).eval(), (torch.randn(batch, 3, 224, 224),)
    if name == "gpt2_small":
        return Gpt2(d).eval(), (torch.randint(0, GPT2_VOCAB, (batch, seq)),)
    return LlamaStack(d).eval(), (torch.randn(batch, seq, d.hidden),)
