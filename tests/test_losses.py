import pytest
import torch
import torch.nn.functional as F

from avvp_stream.train.losses import guided_targets, mmil_loss


def test_label_smoothing_uses_the_official_values():
    y = torch.tensor([[1.0, 0.0]])
    ya, yv = guided_targets(y, y, y, "smoothing")
    assert ya.tolist() == [[1.0, 0.0]]
    torch.testing.assert_close(yv, torch.tensor([[0.95, 0.05]]))


def test_bootstrap_mixes_in_detached_predictions():
    y = torch.tensor([[1.0, 0.0]])
    p = torch.tensor([[0.2, 0.6]], requires_grad=True)
    ya, yv = guided_targets(y, p, p, "bootstrap", bootstrap_beta=0.8)
    torch.testing.assert_close(ya, torch.tensor([[0.84, 0.12]]))
    assert not ya.requires_grad


def test_loss_terms_compose():
    torch.manual_seed(0)
    video, audio, visual = torch.rand(4, 25), torch.rand(4, 25), torch.rand(4, 25)
    y = (torch.rand(4, 25) > 0.8).float()
    wsl = mmil_loss(video, audio, visual, y, "wsl", "none")
    guided = mmil_loss(video, audio, visual, y, "guided", "none")
    both = mmil_loss(video, audio, visual, y, "both", "none")
    torch.testing.assert_close(both, wsl + guided)
    torch.testing.assert_close(wsl, F.binary_cross_entropy(video, y))


def test_probabilities_are_clamped():
    y = torch.tensor([[1.0, 0.0]])
    p = torch.tensor([[0.0, 1.0]])
    loss = mmil_loss(p, p, p, y, "wsl", "none")
    clamped = p.clamp(1e-7, 1 - 1e-7)  # float32: 1 - 1e-7 rounds to 1 - 1.19e-7
    expected = -(torch.log(clamped[0, 0]) + torch.log(1 - clamped[0, 1])) / 2
    assert torch.isfinite(loss) and loss.item() == pytest.approx(expected.item(), rel=1e-6)
