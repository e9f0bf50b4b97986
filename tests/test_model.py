import pytest
import torch

from spira.models.spira_conv import SpiraConvV2
from spira.training.schedule import noam_factor


def test_spira_conv_v2_shape_and_parameter_count():
    model = SpiraConvV2(num_features=40, num_frames=401)
    assert model.frames_after_conv(401) == 43
    # Convs 256+2576+392+68, GroupNorms 64+32+16+8, FC 6880*100+100 and 100+1.
    assert sum(p.numel() for p in model.parameters()) == 691_613
    assert model(torch.randn(5, 401, 40)).shape == (5,)
    assert [type(m).__name__ for m in model.conv if isinstance(m, (torch.nn.GroupNorm, torch.nn.BatchNorm2d))] == ["GroupNorm"] * 4
    assert {m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)} == {0.7}


def test_spira_conv_v1_uses_batchnorm():
    model = SpiraConvV2(num_features=40, num_frames=401, norm="batch")
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == 4


@pytest.mark.parametrize("norm", ["group", "batch"])
def test_channels_last_is_the_same_function_as_the_default_layout(norm):
    torch.manual_seed(0)
    # Dropout off: its masks are drawn in memory order, so with a seed they fall on other elements.
    reference = SpiraConvV2(num_features=40, num_frames=401, dropout=0.0, norm=norm, channels_last=False)
    faster = SpiraConvV2(num_features=40, num_frames=401, dropout=0.0, norm=norm, channels_last=True)
    faster.load_state_dict(reference.state_dict())
    assert faster.conv[0].weight.is_contiguous(memory_format=torch.channels_last)
    features, labels = torch.randn(6, 401, 40), torch.tensor([0.0, 1.0] * 3)
    logits = {}
    for name, model in (("reference", reference), ("faster", faster)):
        logits[name] = model(features)
        torch.nn.functional.binary_cross_entropy_with_logits(logits[name], labels).backward()
    torch.testing.assert_close(logits["faster"], logits["reference"], rtol=1e-5, atol=1e-5)
    # Float32 sums over ~10^5 terms in another order: within 0.1% of the largest gradient.
    scale = max(parameter.grad.abs().max().item() for parameter in reference.parameters())
    for (name, got), expected in zip(faster.named_parameters(), reference.parameters()):
        assert (got.grad - expected.grad).abs().max().item() <= 1e-3 * scale, name
    reference.eval(), faster.eval()
    torch.testing.assert_close(faster(features), reference(features), rtol=1e-5, atol=1e-5)


def test_too_short_input_is_rejected():
    with pytest.raises(ValueError, match="too short"):
        SpiraConvV2(num_features=40, num_frames=20)


def fit_one_batch(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, lr: float) -> list[float]:
    """Adam on one batch for `steps` steps; the BCE loss before each step."""
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        optimiser.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), y)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    return losses


def test_model_learns_a_separable_toy_problem():
    """One optimiser step sequence must reduce the loss: backward() really runs."""
    torch.manual_seed(0)
    model = SpiraConvV2(num_features=8, num_frames=64, dropout=0.0)
    x = torch.randn(32, 64, 8)
    y = (torch.arange(32) % 2).float()
    x[y == 1] += 1.0
    losses = fit_one_batch(model, x, y, steps=30, lr=1e-3)
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize(
    ("step", "expected"),
    [(0, 1 / 100), (49, 0.5), (99, 1.0), (399, 0.5), (9999, 0.1)],
)
def test_noam_factor_warms_up_linearly_then_decays(step, expected):
    assert noam_factor(step, warmup_steps=100) == pytest.approx(expected)


def test_noam_rejects_zero_warmup():
    with pytest.raises(ValueError):
        noam_factor(0, 0)


def test_mfcc_transformer_shape_parameter_count_and_tokens():
    from spira.models.mfcc_transformer import MfccTransformer

    model = MfccTransformer(num_features=40, num_frames=401)
    # 401 frames + 3 of padding = 101 tokens of 4 stacked frames (160 values each).
    assert (model.padding, model.positions.shape) == (3, (101, 64))
    # Projection 160*64+64; per block LayerNorms 2*128, qkv 64*192+192, out 64*64+64, FF 64*128+128 + 128*64+64;
    # final LayerNorm 128, head 65.
    assert sum(p.numel() for p in model.parameters()) == 77_441
    assert model(torch.randn(5, 401, 40)).shape == (5,)
    cls = MfccTransformer(num_features=40, num_frames=401, pooling="cls")
    assert sum(p.numel() for p in cls.parameters()) == 77_441 + 64 and cls.positions.shape == (102, 64)
    large = MfccTransformer(num_features=40, num_frames=401, d_model=256, num_layers=6, num_heads=8, ff_dim=1024)
    assert sum(p.numel() for p in large.parameters()) == 4_780_545
    with pytest.raises(ValueError, match="model.pooling=max"):
        MfccTransformer(num_features=40, num_frames=401, pooling="max")
    with pytest.raises(ValueError, match="divisible by model.num_heads=5"):
        MfccTransformer(num_features=40, num_frames=401, num_heads=5)


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_mfcc_transformer_overfits_one_batch_and_is_order_sensitive(pooling):
    from spira.models.mfcc_transformer import MfccTransformer

    torch.manual_seed(0)
    model = MfccTransformer(num_features=8, num_frames=30, d_model=32, num_heads=4, ff_dim=64, dropout=0.0, frame_stack=4, pooling=pooling)
    x, y = torch.randn(16, 30, 8), (torch.arange(16) % 2).float()
    assert fit_one_batch(model, x, y, steps=150, lr=3e-3)[-1] < 0.05  # random labels on 16 windows: memorised
    model.eval()
    # Positions are encoded: reversing the frames changes the output.
    assert not torch.allclose(model(x), model(x.flip(1)))


def test_cnn6_has_panns_widths_parameter_count_and_shape():
    from spira.models.cnn6 import Cnn6

    model = Cnn6(num_features=64, num_frames=401)
    # bn0 2*64; conv 5x5 without bias 1*64, 64*128, 128*256, 256*512 (x25) and their batch norms 2*(64+128+256+512);
    # fc1 512*512+512; head 513. PANN's CNN6 without its 527-class head.
    assert [block.conv1.out_channels for block in (model.conv_block1, model.conv_block2, model.conv_block3, model.conv_block4)] == [64, 128, 256, 512]
    assert sum(p.numel() for p in model.parameters()) == 4_567_617
    assert model(torch.randn(3, 401, 64)).shape == (3,)
    small = Cnn6(num_features=64, num_frames=401, base_channels=16)
    assert sum(p.numel() for p in small.parameters()) == 286_449
    with pytest.raises(ValueError, match="at least 16 frames and 16 mel bands"):
        Cnn6(num_features=8, num_frames=401)
    with pytest.raises(ValueError, match="base_channels 0"):
        Cnn6(num_features=64, num_frames=401, base_channels=0)


def test_cnn6_overfits_one_batch_and_its_eval_output_does_not_depend_on_the_batch():
    from spira.models.cnn6 import Cnn6

    torch.manual_seed(0)
    model = Cnn6(num_features=16, num_frames=32, base_channels=4, dropout=0.0, fc_dropout=0.0)
    x, y = torch.randn(16, 32, 16), (torch.arange(16) % 2).float()
    assert fit_one_batch(model, x, y, steps=150, lr=3e-3)[-1] < 0.05  # random labels on 16 windows: memorised
    model.eval()
    # Batch norm in eval reads its running statistics: one window scores the same alone or in a batch.
    torch.testing.assert_close(model(x[:1]), model(x)[:1], atol=1e-5, rtol=1e-5)
