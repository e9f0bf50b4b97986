"""MFCC-gram Transformer (after Gauy & Finger, STIL 2021): a Transformer encoder over MFCC frames.

Input (batch, frames, n_mfcc), output one logit per window, the contract every window
classifier of the pipeline keeps. `frame_stack` adjacent frames are concatenated into one
token (the window's frame count padded with zeros to a multiple of it), so attention runs
over frames / frame_stack tokens: with SPIRA's 4 s windows (401 frames) and the default 4,
101 tokens. A linear projection to `d_model`, fixed sinusoidal positions, `num_layers`
pre-norm encoder blocks (multi-head self-attention, GELU feed-forward), then the mean of the
tokens (`pooling: mean`) or a learned class token (`pooling: cls`), and a linear head.

The attention is written with `scaled_dot_product_attention` rather than
`nn.TransformerEncoder`, whose inference fast path does not export to ONNX.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

POOLINGS = ("mean", "cls")


def sinusoidal_positions(length: int, dim: int) -> torch.Tensor:
    """(length, dim) fixed positional encoding of Vaswani et al. (2017)."""
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    frequency = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency[: dim // 2])
    return table


class EncoderBlock(nn.Module):
    """Pre-norm Transformer encoder block: x + attention(norm(x)), then x + feed_forward(norm(x))."""

    def __init__(self, d_model: int, num_heads: int, ff_dim: int, dropout: float):
        super().__init__()
        self.num_heads = num_heads
        self.attention_norm = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.attention_out = nn.Linear(d_model, d_model)
        self.ff_norm = nn.LayerNorm(d_model)
        self.feed_forward = nn.Sequential(nn.Linear(d_model, ff_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(ff_dim, d_model))
        self.dropout = nn.Dropout(dropout)
        self.attention_dropout = dropout

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        batch, length, width = tokens.shape
        q, k, v = self.qkv(self.attention_norm(tokens)).chunk(3, dim=-1)
        heads = [part.reshape(batch, length, self.num_heads, width // self.num_heads).transpose(1, 2) for part in (q, k, v)]
        attended = F.scaled_dot_product_attention(*heads, dropout_p=self.attention_dropout if self.training else 0.0)
        tokens = tokens + self.dropout(self.attention_out(attended.transpose(1, 2).reshape(batch, length, width)))
        return tokens + self.dropout(self.feed_forward(self.ff_norm(tokens)))


class MfccTransformer(nn.Module):
    """Window classifier: (batch, frames, features) -> (batch,) logits."""

    def __init__(
        self,
        num_features: int,
        num_frames: int,
        d_model: int = 64,
        num_layers: int = 2,
        num_heads: int = 4,
        ff_dim: int = 128,
        dropout: float = 0.1,
        frame_stack: int = 4,
        pooling: str = "mean",
    ):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"model.pooling={pooling}: expected one of {list(POOLINGS)}")
        if d_model % num_heads or d_model % 2:
            raise ValueError(f"model.d_model={d_model} must be even and divisible by model.num_heads={num_heads}")
        if frame_stack < 1 or num_frames < 1:
            raise ValueError(f"model.frame_stack={frame_stack} and {num_frames} frames per window must both be at least 1")
        self.frame_stack, self.pooling = frame_stack, pooling
        self.padding = -num_frames % frame_stack
        tokens = (num_frames + self.padding) // frame_stack
        self.project = nn.Linear(num_features * frame_stack, d_model)
        self.class_token = nn.Parameter(torch.zeros(1, 1, d_model)) if pooling == "cls" else None
        self.register_buffer("positions", sinusoidal_positions(tokens + (pooling == "cls"), d_model), persistent=False)
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(EncoderBlock(d_model, num_heads, ff_dim, dropout) for _ in range(num_layers))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        batch, frames, width = features.shape
        stacked = F.pad(features, (0, 0, 0, self.padding)).reshape(batch, (frames + self.padding) // self.frame_stack, width * self.frame_stack)
        tokens = self.project(stacked)
        if self.class_token is not None:
            tokens = torch.cat([self.class_token.expand(batch, -1, -1), tokens], dim=1)
        tokens = self.dropout(tokens + self.positions)
        for block in self.blocks:
            tokens = block(tokens)
        tokens = self.norm(tokens)
        pooled = tokens[:, 0] if self.class_token is not None else tokens.mean(dim=1)
        return self.head(pooled).squeeze(-1)
