"""The NumPy actor samples from the same distribution as the torch actor."""
import numpy as np
import pytest
import torch
from gymnasium import spaces

from deeprl.nn.numpy_actor import numpy_actor
from deeprl.nn.policies import Actor

OBS = spaces.Box(-1, 1, (5,), np.float32)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_categorical_log_probs_and_frequencies(activation):
    torch.manual_seed(0)
    actor = Actor(OBS, spaces.Discrete(3), (16, 16), activation, ortho_init=False)
    act = numpy_actor(actor, np.random.default_rng(0))
    obs = np.random.default_rng(1).uniform(-1, 1, (4, 5)).astype(np.float32)
    dist = actor(torch.as_tensor(obs))
    a, logp = act(obs)
    np.testing.assert_allclose(logp, dist.log_prob(torch.as_tensor(a)).detach().numpy(), atol=1e-5)
    # empirical action frequencies of one state vs softmax probabilities
    one = np.repeat(obs[:1], 40_000, axis=0)
    counts = np.bincount(act(one)[0], minlength=3) / len(one)
    probs = dist.logits[0].exp().detach().numpy()
    np.testing.assert_allclose(counts, probs, atol=0.01)


def test_gaussian_log_probs_and_moments():
    torch.manual_seed(0)
    actor = Actor(OBS, spaces.Box(-2, 2, (2,), np.float32), (16,), "tanh", log_std_init=-0.5)
    with torch.no_grad():
        actor.body[-1].weight.normal_()  # a non-trivial mean
    act = numpy_actor(actor, np.random.default_rng(0))
    obs = np.random.default_rng(1).uniform(-1, 1, (3, 5)).astype(np.float32)
    dist = actor(torch.as_tensor(obs))
    a, logp = act(obs)
    np.testing.assert_allclose(logp, dist.log_prob(torch.as_tensor(a)).detach().numpy(), atol=1e-4)
    many, _ = act(np.repeat(obs[:1], 50_000, axis=0))
    np.testing.assert_allclose(many.mean(0), dist.mean[0].detach().numpy(), atol=0.01)
    np.testing.assert_allclose(many.std(0), np.exp(-0.5) * np.ones(2), atol=0.01)


def test_weights_are_live_views():
    actor = Actor(OBS, spaces.Discrete(2), (8,), "tanh")
    act = numpy_actor(actor, np.random.default_rng(0))
    obs = np.zeros((1, 5), np.float32)
    with torch.no_grad():
        actor.body[-1].bias.copy_(torch.tensor([50.0, -50.0]))
    assert act(obs)[0][0] == 0
    with torch.no_grad():
        actor.body[-1].bias.copy_(torch.tensor([-50.0, 50.0]))
    assert act(obs)[0][0] == 1


def test_unsupported_actors_fall_back():
    assert numpy_actor(Actor(OBS, spaces.Box(-1, 1, (2,)), squash=True), np.random.default_rng(0)) is None
    assert numpy_actor(Actor(OBS, spaces.Box(-1, 1, (2,)), state_dependent_std=True),
                       np.random.default_rng(0)) is None
    img = spaces.Box(0, 255, (36, 36, 1), np.uint8)
    assert numpy_actor(Actor(img, spaces.Discrete(2)), np.random.default_rng(0)) is None


def test_numpy_q_values_match_torch_for_plain_and_dueling_heads():
    import torch
    from gymnasium import spaces

    from deeprl.nn.numpy_actor import numpy_q_values
    from deeprl.nn.qnets import QNetwork

    obs_space = spaces.Box(-1, 1, (5,), np.float32)
    x = np.random.default_rng(0).normal(size=(9, 5)).astype(np.float32)
    for dueling in (False, True):
        net = QNetwork(obs_space, 3, (16, 8), dueling=dueling)
        with torch.no_grad():
            ref = net(torch.as_tensor(x)).numpy()
        np.testing.assert_allclose(numpy_q_values(net)(x), ref, rtol=1e-5, atol=1e-6)
    assert numpy_q_values(QNetwork(obs_space, 3, (16,), noisy=True)) is None
    assert numpy_q_values(QNetwork(obs_space, 3, (16,), n_atoms=5)) is None
