"""TD targets on hand-made tensors, and the C51 projection against a brute-force projection."""
import numpy as np
import pytest
import torch

from deeprl.core.targets import categorical_projection, ensemble_backup, q_learning_target, soft_q_target


def test_dqn_and_double_q_targets_by_hand():
    r = torch.tensor([1.0, 0.5, -1.0])
    disc = torch.tensor([0.9, 0.0, 0.81])  # second transition terminated; third is a 2-step target
    q_target = torch.tensor([[1.0, 3.0, 2.0], [5.0, 5.0, 5.0], [-1.0, -2.0, 4.0]])
    q_online = torch.tensor([[9.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.0, 7.0, 1.0]])
    # DQN: max over the target network
    torch.testing.assert_close(q_learning_target(r, disc, q_target), torch.tensor([1 + 0.9 * 3, 0.5, -1 + 0.81 * 4]))
    # double Q: online argmax (0, 2, 1), evaluated by the target network
    torch.testing.assert_close(q_learning_target(r, disc, q_target, q_online),
                               torch.tensor([1 + 0.9 * 1, 0.5, -1 + 0.81 * -2]))


def test_clipped_double_q_mean_and_crossed_backups():
    q = torch.tensor([[1.0, 5.0, -2.0], [3.0, 4.0, -1.0]])  # (E=2, B=3)
    torch.testing.assert_close(ensemble_backup(q, "min"), torch.tensor([1.0, 4.0, -2.0]))
    torch.testing.assert_close(ensemble_backup(q, "mean"), torch.tensor([2.0, 4.5, -1.5]))
    torch.testing.assert_close(ensemble_backup(q, "doubleq"), torch.tensor([[3.0, 4.0, -1.0], [1.0, 5.0, -2.0]]))
    with pytest.raises(ValueError, match="valid: min, mean, doubleq"):
        ensemble_backup(q, "max")


def test_soft_q_target_is_a_soft_maximum():
    q = torch.tensor([[1.0, 2.0, 3.0]])
    alpha = 0.5
    v = alpha * np.log(np.exp(np.array([1.0, 2.0, 3.0]) / alpha).sum())
    torch.testing.assert_close(soft_q_target(torch.tensor([0.0]), torch.tensor([1.0]), q, alpha),
                               torch.tensor([v], dtype=torch.float32))
    # temperature -> 0 recovers the hard max; large values do not overflow
    hard = soft_q_target(torch.tensor([0.0]), torch.tensor([1.0]), q * 1000, 1e-3)
    assert torch.isfinite(hard).all() and hard.item() == pytest.approx(3000.0, abs=1e-2)


def brute_projection(p, r, disc, support):
    """C51 paper, Eq. 7: (Phi T Z)_i = sum_j [1 - |clip(r + g z_j) - z_i| / dz]_0^1 p_j."""
    z = support.numpy().astype(np.float64)
    dz = z[1] - z[0]
    out = np.zeros_like(p, dtype=np.float64)
    for b in range(p.shape[0]):
        tz = np.clip(r[b] + disc[b] * z, z[0], z[-1])
        for i in range(len(z)):
            out[b, i] = (np.clip(1 - np.abs(tz - z[i]) / dz, 0, 1) * p[b]).sum()
    return out


@pytest.mark.parametrize("K,v_min,v_max", [(51, -10.0, 10.0), (11, 0.0, 5.0), (5, -1.0, 1.0)])
def test_categorical_projection_matches_brute_force(K, v_min, v_max):
    g = torch.Generator().manual_seed(K)
    B = 64
    support = torch.linspace(v_min, v_max, K, dtype=torch.float64)
    p = torch.rand(B, K, generator=g, dtype=torch.float64)
    p /= p.sum(1, keepdim=True)
    r = (torch.rand(B, generator=g, dtype=torch.float64) - 0.5) * 3 * (v_max - v_min)  # some fall outside
    disc = torch.where(torch.rand(B, generator=g) < 0.2, 0.0, 0.99).to(torch.float64)
    r[:4] = torch.tensor([v_min, v_max, 0.0, (v_min + v_max) / 2])  # exact atoms
    disc[:4] = 0.0
    got = categorical_projection(p, r, disc, support)
    np.testing.assert_allclose(got.numpy(), brute_projection(p.numpy(), r.numpy(), disc.numpy(), support), atol=1e-12)
    np.testing.assert_allclose(got.sum(1).numpy(), 1.0, atol=1e-12)
    # a distribution already on the support maps to itself under r = 0, gamma = 1
    same = categorical_projection(p, torch.zeros(B, dtype=torch.float64), torch.ones(B, dtype=torch.float64),
                                  support)
    np.testing.assert_allclose(same.numpy(), p.numpy(), atol=1e-12)
