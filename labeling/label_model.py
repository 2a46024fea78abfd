"""A Dawid–Skene label model fitted by EM: the class of each item from several noisy, abstaining votes.

Each labeling function j has a class-conditional distribution over its outputs,
``P(vote_j = l | y = k)`` for the K classes and abstain, and the functions are independent given the true
class. EM alternates the posterior of y per item (E) and MAP estimates of the class prior and these
tables under a Dirichlet prior that favours correct votes (M). This is the model Snorkel's LabelModel
estimates (by matrix completion instead of EM); tests compare the two on the same vote matrices.

Example:
    >>> import numpy as np
    >>> votes = np.array([[0, 0, -1], [1, 1, 1], [2, -1, 2], [0, 1, 0]])
    >>> DawidSkeneModel(n_classes=3).fit(votes).predict(votes).tolist()
    [0, 1, 2, 0]
"""

from __future__ import annotations

import numpy as np

from onconet.errors import OncoNetError

ABSTAIN = -1


class LabelModelError(OncoNetError):
    """A vote matrix the label model cannot use (shape, values)."""


class DawidSkeneModel:
    """Dawid–Skene EM; abstentions are modelled with a rate per function (per class if asked).

    Args:
        n_classes: number of classes K (votes are 0..K-1, or -1 to abstain).
        prior_correct: Dirichlet pseudo-count for a correct vote (diagonal of each table).
        prior_wrong: pseudo-count for each wrong class.
        prior_abstain: pseudo-count for abstaining.
        max_iter: EM iterations at most.
        tol: stop when no posterior moves more than this.
        abstain_informative: learn each function's abstain rate per class (abstaining is evidence);
            by default one rate per function, so abstaining is neutral.
    """

    def __init__(
        self,
        n_classes: int = 3,
        prior_correct: float = 1.0,
        prior_wrong: float = 0.2,
        prior_abstain: float = 0.5,
        max_iter: int = 500,
        tol: float = 1e-7,
        abstain_informative: bool = False,
    ) -> None:
        self.n_classes = n_classes
        self.prior_correct = prior_correct
        self.prior_wrong = prior_wrong
        self.prior_abstain = prior_abstain
        self.max_iter = max_iter
        self.tol = tol
        self.abstain_informative = abstain_informative
        self.class_prior_: np.ndarray | None = None
        #: (m, K, K+1): P(vote_j = l | y = k); column K is abstain
        self.conditional_: np.ndarray | None = None
        self.n_iter_ = 0
        self.objective_ = float("nan")

    # --- fitting ----------------------------------------------------------------------------------------

    def _check(self, votes: np.ndarray) -> np.ndarray:
        votes = np.asarray(votes)
        if votes.ndim != 2:
            raise LabelModelError(f"vote matrix must be 2-D (items x functions), got shape {votes.shape}")
        if votes.size and (votes.min() < ABSTAIN or votes.max() >= self.n_classes):
            raise LabelModelError(
                f"votes must lie in -1..{self.n_classes - 1}; got {votes.min()}..{votes.max()}"
            )
        return votes.astype(np.int64)

    def _one_hot(self, votes: np.ndarray) -> np.ndarray:
        """(m, n, K+1) indicator of each function's output, abstain in the last slot."""
        outputs = np.where(votes == ABSTAIN, self.n_classes, votes)
        return np.eye(self.n_classes + 1)[outputs.T]

    def _majority_posterior(self, votes: np.ndarray) -> np.ndarray:
        counts = np.stack([(votes == k).sum(axis=1) for k in range(self.n_classes)], axis=1).astype(float)
        counts += 0.1  # all-abstain rows start uniform
        return counts / counts.sum(axis=1, keepdims=True)

    def fit(self, votes: np.ndarray) -> DawidSkeneModel:
        """Estimate the class prior and every function's conditional table from ``votes`` (n, m).

        EM has local optima when functions are correlated (two numeric functions reading the same
        values), so it is restarted from majority vote and from each function's own votes, and the
        fit with the highest penalised log-likelihood is kept.
        """
        votes = self._check(votes)
        one_hot = self._one_hot(votes)
        starts = [self._majority_posterior(votes)]
        for j in range(votes.shape[1]):
            voted = votes[:, j] != ABSTAIN
            if voted.any():
                start = np.full((len(votes), self.n_classes), 1.0 / self.n_classes)
                start[voted] = 0.9 * np.eye(self.n_classes)[votes[voted, j]] + 0.1 / self.n_classes
                starts.append(start)
        best = None
        for start in starts:
            prior, conditional, n_iter = self._em(one_hot, start)
            objective = self._objective(one_hot, prior, conditional)
            if best is None or objective > best[0] + 1e-9:
                best = (objective, prior, conditional, n_iter)
        _, self.class_prior_, self.conditional_, self.n_iter_ = best
        self.objective_ = best[0]
        return self

    def _pseudo_counts(self) -> np.ndarray:
        k = self.n_classes
        pseudo = np.full((k, k + 1), self.prior_wrong)
        np.fill_diagonal(pseudo[:, :k], self.prior_correct)
        pseudo[:, k] = self.prior_abstain
        return pseudo

    def _em(self, one_hot: np.ndarray, posterior: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        """EM from a starting posterior; returns (class prior, tables, iterations)."""
        k = self.n_classes
        pseudo = self._pseudo_counts()
        iteration = 0
        for iteration in range(1, self.max_iter + 1):  # noqa: B007 - the count is returned
            # M step: MAP class prior (Dirichlet 2) and tables (Dirichlet pseudo + 1)
            prior = (posterior.sum(axis=0) + 1.0) / (posterior.sum() + k)
            counts = np.matmul(posterior.T[None], one_hot) + pseudo[None]
            conditional = self._tables(counts)
            # E step
            new_posterior = self._posterior(one_hot, prior, conditional)
            shift = np.abs(new_posterior - posterior).max() if len(posterior) else 0.0
            posterior = new_posterior
            if shift < self.tol:
                break
        return prior, conditional, iteration

    def _tables(self, counts: np.ndarray) -> np.ndarray:
        """Conditional tables from expected counts (m, K, K+1).

        Unless ``abstain_informative``, a function abstains at one rate whatever the class, so an
        abstention carries no evidence: the numeric functions abstain on missing or borderline values,
        which says little about the class and, learnt per class on a small cohort, overfits.
        """
        if self.abstain_informative:
            return counts / counts.sum(axis=2, keepdims=True)
        k = self.n_classes
        abstain_rate = counts[:, :, k].sum(axis=1) / counts.sum(axis=(1, 2))
        votes = counts[:, :, :k] / counts[:, :, :k].sum(axis=2, keepdims=True)
        tables = np.empty_like(counts)
        tables[:, :, :k] = votes * (1.0 - abstain_rate)[:, None, None]
        tables[:, :, k] = abstain_rate[:, None]
        return tables

    def _objective(self, one_hot: np.ndarray, prior: np.ndarray, conditional: np.ndarray) -> float:
        """Log-likelihood of the votes plus the log of the Dirichlet priors (what the M step maximises)."""
        log_joint = _log_likelihoods(one_hot, conditional) + np.log(prior)[None]
        top = log_joint.max(axis=1, keepdims=True)
        log_likelihood = float((top[:, 0] + np.log(np.exp(log_joint - top).sum(axis=1))).sum())
        log_prior = float((self._pseudo_counts()[None] * np.log(conditional)).sum() + np.log(prior).sum())
        return log_likelihood + log_prior

    @staticmethod
    def _posterior(one_hot: np.ndarray, prior: np.ndarray, conditional: np.ndarray) -> np.ndarray:
        log_like = _log_likelihoods(one_hot, conditional) + np.log(prior)[None]
        log_like -= log_like.max(axis=1, keepdims=True)
        post = np.exp(log_like)
        return post / post.sum(axis=1, keepdims=True)

    # --- prediction -------------------------------------------------------------------------------------

    def predict_proba(self, votes: np.ndarray) -> np.ndarray:
        """Posterior class probabilities (n, K)."""
        if self.conditional_ is None or self.class_prior_ is None:
            raise LabelModelError("the label model is not fitted; call fit(votes) first")
        votes = self._check(votes)
        return self._posterior(self._one_hot(votes), self.class_prior_, self.conditional_)

    def predict(self, votes: np.ndarray) -> np.ndarray:
        """Most probable class per item; -1 where every function abstained."""
        votes = self._check(votes)
        labels = self.predict_proba(votes).argmax(axis=1)
        labels[(votes == ABSTAIN).all(axis=1)] = ABSTAIN
        return labels

    @property
    def accuracies(self) -> np.ndarray:
        """Each function's estimated accuracy when it votes: P(vote = y | vote != abstain)."""
        if self.conditional_ is None or self.class_prior_ is None:
            raise LabelModelError("the label model is not fitted; call fit(votes) first")
        k = self.n_classes
        correct = np.einsum("k,mkk->m", self.class_prior_, self.conditional_[:, :, :k])
        voting = np.einsum("k,mk->m", self.class_prior_, 1.0 - self.conditional_[:, :, k])
        return correct / voting


def _log_likelihoods(one_hot: np.ndarray, conditional: np.ndarray) -> np.ndarray:
    """(n, K): sum over functions of log P(observed vote | class)."""
    return np.matmul(one_hot, np.log(conditional).transpose(0, 2, 1)).sum(axis=0)


def majority_vote(votes: np.ndarray, n_classes: int = 3) -> np.ndarray:
    """The most frequent vote per item; -1 where all abstain or the top classes tie."""
    votes = np.asarray(votes)
    counts = np.stack([(votes == k).sum(axis=1) for k in range(n_classes)], axis=1)
    best = counts.argmax(axis=1)
    top = counts.max(axis=1)
    ties = (counts == top[:, None]).sum(axis=1) > 1
    best[(top == 0) | ties] = ABSTAIN
    return best
