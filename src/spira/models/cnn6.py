"""CNN6 of the PANNs (Kong et al., 2020, "PANNs: Large-Scale Pretrained Audio Neural Networks"),
as a window classifier over log-mel frames.

Input (batch, frames, mel bands), output one logit per window, the contract every window
classifier of the pipeline keeps. PANN's layout and layer names: `bn0` (batch norm over the
mel bands), four `conv_block`s (5x5 convolution without bias, batch norm, ReLU, 2x2 average
pooling, dropout 0.2), the mean over mel bands, then max + mean over time (global pooling),
dropout 0.5, `fc1` with ReLU, dropout 0.5, and a one-logit head `fc_out` in place of PANN's
527-class `fc_audioset`. With `base_channels: 64` the blocks have PANN's widths (64, 128,
256, 512) and `spira.training.pretrained.load_pann_weights` loads a PANN CNN6 checkpoint
(every layer but the head); a smaller base scales every width (a CPU-sized network).
PANN's SpecAugment is left out: training augments with ward noise (`augment`).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

# PANN CNN6's channel widths relative to its first block.
WIDTH_MULTIPLIERS = (1, 2, 4, 8)
PANN_BASE_CHANNELS = 64


class ConvBlock5x5(nn.Module):
    """PANN's ConvBlock5x5: conv (5x5, no bias) -> batch norm -> ReLU -> 2x2 average pooling."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=5, padding=2, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(F.relu(self.bn1(self.conv1(x))), kernel_size=2)


class Cnn6(nn.Module):
    """Window classifier: (batch, frames, mel bands) -> (batch,) logits."""

    def __init__(self, num_features: int, num_frames: int, base_channels: int = PANN_BASE_CHANNELS, dropout: float = 0.2, fc_dropout: float = 0.5):
        super().__init__()
        if base_channels < 1:
            raise ValueError(f"base_channels {base_channels} must be at least 1")
        # Four 2x2 poolings: both axes must keep at least one cell.
        if num_frames < 16 or num_features < 16:
            raise ValueError(f"CNN6 pools each axis by 16: needs at least 16 frames and 16 mel bands, got {num_frames} and {num_features}")
        widths = [base_channels * multiplier for multiplier in WIDTH_MULTIPLIERS]
        self.bn0 = nn.BatchNorm2d(num_features)
        self.conv_block1 = ConvBlock5x5(1, widths[0])
        self.conv_block2 = ConvBlock5x5(widths[0], widths[1])
        self.conv_block3 = ConvBlock5x5(widths[1], widths[2])
        self.conv_block4 = ConvBlock5x5(widths[2], widths[3])
        self.fc1 = nn.Linear(widths[3], widths[3])
        self.fc_out = nn.Linear(widths[3], 1)
        self.dropout = dropout
        self.fc_dropout = fc_dropout

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        # (batch, frames, mels) -> (batch, 1, frames, mels); bn0 normalises each mel band (PANN's transpose trick).
        x = self.bn0(features.unsqueeze(1).transpose(1, 3)).transpose(1, 3)
        for block in (self.conv_block1, self.conv_block2, self.conv_block3, self.conv_block4):
            x = F.dropout(block(x), p=self.dropout, training=self.training)
        x = x.mean(dim=3)  # over mel bands: (batch, channels, frames / 16)
        x = x.amax(dim=2) + x.mean(dim=2)
        x = F.dropout(x, p=self.fc_dropout, training=self.training)
        x = F.dropout(F.relu(self.fc1(x)), p=self.fc_dropout, training=self.training)
        return self.fc_out(x).squeeze(-1)
