"""The Dawid–Skene label model: known-accuracy simulated votes, and Snorkel's LabelModel on the same votes."""

from __future__ import annotations

import numpy as np
import pytest

from labeling.label_model import ABSTAIN, DawidSkeneModel, LabelModelError, majority_vote

K = 3


def simulate(seed: int, n: int, accuracy, coverage, prior=(0.4, 0.35, 0.25)):
    """Votes of independent functions with known accuracy and coverage; errors uniform over wrong classes."""
    rng = np.random.default_rng(seed)
    truth = rng.choice(K, size=n, p=prior)
    votes = np.full((n, len(accuracy)), ABSTAIN)
    for j, (acc, cov) in enumerate(zip(accuracy, coverage, strict=True)):
        voted = rng.random(n) < cov
        correct = rng.random(n) < acc
        wrong = (truth + rng.integers(1, K, size=n)) % K
        votes[voted, j] = np.where(correct, truth, wrong)[voted]
    return votes, truth


ACCURACY = np.array([0.9, 0.75, 0.65, 0.85, 0.6, 0.7])
COVERAGE = np.array([0.6, 0.8, 0.5, 0.3, 0.9, 0.4])


@pytest.fixture(scope="module")
def simulated():
    return simulate(0, 4000, ACCURACY, COVERAGE)


def test_recovers_the_accuracies_that_generated_the_votes(simulated):
    votes, truth = simulated
    model = DawidSkeneModel().fit(votes)
    np.testing.assert_allclose(model.accuracies, ACCURACY, atol=0.03)
    np.testing.assert_allclose(model.class_prior_, [0.4, 0.35, 0.25], atol=0.03)
    predicted = model.predict(votes)
    assert (predicted == truth).mean() > (majority_vote(votes) == truth).mean() + 0.05


def test_confidence_is_calibrated(simulated):
    votes, truth = simulated
    model = DawidSkeneModel().fit(votes)
    proba = model.predict_proba(votes)
    voted = (votes != ABSTAIN).any(axis=1)
    confidence = proba.max(axis=1)[voted]
    correct = (proba.argmax(axis=1) == truth)[voted]
    assert abs(confidence.mean() - correct.mean()) < 0.03
    assert correct[confidence > 0.9].mean() > 0.9


@pytest.mark.parametrize("seed", [1])
def test_against_snorkel_on_the_same_votes(seed):
    """Both estimate the same conditional-independence model; they agree on accuracies and labels."""
    snorkel_model = pytest.importorskip("snorkel.labeling.model")
    accuracy = np.array([0.85, 0.7, 0.6, 0.8, 0.75])
    coverage = np.array([0.7, 0.6, 0.9, 0.4, 0.5])
    votes, truth = simulate(seed, 3000, accuracy, coverage, prior=(1 / 3, 1 / 3, 1 / 3))
    ours = DawidSkeneModel().fit(votes)
    theirs = snorkel_model.LabelModel(cardinality=K, verbose=False)
    theirs.fit(votes, n_epochs=500, seed=seed, log_freq=1000, progress_bar=False)
    np.testing.assert_allclose(ours.accuracies, theirs.get_weights(), atol=0.04)
    np.testing.assert_allclose(ours.accuracies, accuracy, atol=0.04)
    voted = (votes != ABSTAIN).any(axis=1)
    ours_labels = ours.predict(votes)[voted]
    theirs_labels = theirs.predict(votes, tie_break_policy="random")[voted]
    assert (ours_labels == theirs_labels).mean() > 0.93
    assert (ours_labels == truth[voted]).mean() >= (theirs_labels == truth[voted]).mean() - 0.01


def test_restarts_keep_the_best_fit(simulated):
    """The kept fit has the highest penalised likelihood of all starts (majority vote and each function)."""
    votes, _ = simulated
    model = DawidSkeneModel().fit(votes[:1500])
    one_hot = model._one_hot(votes[:1500])
    start = np.full((1500, K), 1 / K)  # a start the model does not try: uniform
    prior, tables, _ = model._em(one_hot, start)
    assert model.objective_ >= model._objective(one_hot, prior, tables) - 1e-6


def test_all_abstain_rows_get_no_label_and_ties_in_majority_vote():
    votes = np.array([[0, 0, -1], [-1, -1, -1], [0, 1, -1], [2, 2, 2]])
    model = DawidSkeneModel().fit(votes)
    assert model.predict(votes)[1] == ABSTAIN
    assert majority_vote(votes).tolist() == [0, ABSTAIN, ABSTAIN, 2]


def test_abstention_can_be_modelled_per_class():
    """A function that only ever votes 'progression' and abstains otherwise is informative by abstaining."""
    votes, truth = simulate(4, 2000, [0.8, 0.8], [1.0, 1.0])
    only_progression = np.where(truth == 2, 2, ABSTAIN)[:, None]
    votes = np.hstack([votes, only_progression])
    neutral = DawidSkeneModel().fit(votes)
    informative = DawidSkeneModel(abstain_informative=True).fit(votes)
    assert (informative.predict(votes) == truth).mean() > (neutral.predict(votes) == truth).mean()


def test_bad_input():
    with pytest.raises(LabelModelError, match="2-D"):
        DawidSkeneModel().fit(np.zeros(3, dtype=int))
    with pytest.raises(LabelModelError, match=r"-1\.\.2"):
        DawidSkeneModel().fit(np.array([[0, 3]]))
    with pytest.raises(LabelModelError, match="not fitted"):
        DawidSkeneModel().predict(np.array([[0, 1]]))
