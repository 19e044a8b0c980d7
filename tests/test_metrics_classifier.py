"""Classifier metrics (top1, top5, top1_agree, fid_effl0): counting logic with a stand-in classifier, the Frechet
formula against a direct scipy computation, and one run with the real EfficientNet-Lite0 (skipped if unavailable)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import skimage.data
import torch

import metrics
from metrics import dataset as ds
from metrics import functional as MF
from metrics.suite import MetricSuite


class StandIn:
    """Deterministic stand-in classifier: logits are a fixed linear map of the per-image mean colour and a coarse
    4x4 colour layout; features are that layout. Counts its calls (to check that outputs are shared)."""

    name = "stand-in"
    backend = "test"
    sha256 = "f" * 64

    def __init__(self, seed: int = 0):
        generator = torch.Generator().manual_seed(seed)
        self.weights = torch.randn(48, 1000, generator=generator, dtype=torch.float64)
        self.calls = 0

    def features(self, images):
        self.calls += 1
        return self._layout(images).float()

    def logits(self, images):
        self.calls += 1
        return (self._layout(images) @ self.weights).float()

    @staticmethod
    def _layout(images):
        x = images.double() / (255.0 if images.dtype == torch.uint8 else 1.0)
        return torch.nn.functional.adaptive_avg_pool2d(x, 4).flatten(1)  # (N, 48)


@pytest.fixture()
def batch():
    rng = np.random.default_rng(0)
    gt = torch.from_numpy(rng.uniform(0, 1, (12, 3, 16, 16)))
    pred = (gt + torch.from_numpy(rng.normal(0, 0.2, gt.shape))).clamp(0, 1)
    return pred, gt


def test_topk_counts(batch):
    pred, gt = batch
    clf = StandIn()
    logits = clf.logits(pred)
    order = torch.argsort(logits, dim=1, descending=True, stable=True)
    labels = order[:, 0].clone()
    labels[::3] = order[::3, 3]  # rank 4: a top-5 hit, a top-1 miss
    labels[1::4] = order[1::4, 7]  # rank 8: a miss for both
    top1_expected = np.mean([int(order[i, 0] == labels[i]) for i in range(12)])
    top5_expected = np.mean([int(labels[i] in order[i, :5]) for i in range(12)])
    assert MF.top1(pred, labels, classifier=clf) == top1_expected
    assert MF.top5(pred, labels, classifier=clf) == top5_expected
    assert 0 < top1_expected < top5_expected < 1
    m = metrics.create_metric("top1", classifier=clf)
    m.update(pred[:5], labels=labels[:5])
    m.update(pred[5:], labels=labels[5:].numpy())
    np.testing.assert_array_equal(m.values(), [float(order[i, 0] == labels[i]) for i in range(12)])


def test_top1_agree_counts(batch):
    pred, gt = batch
    clf = StandIn()
    agree = (clf.logits(pred).argmax(1) == clf.logits(gt).argmax(1)).double()
    assert MF.top1_agree(pred, gt, classifier=clf) == float(agree.mean())
    assert MF.top1_agree(gt, gt, classifier=clf) == 1.0


def test_ties_are_broken_by_the_lower_class_index():
    logits = torch.zeros(2, 1000)
    logits[:, 5] = 1.0
    logits[:, 7] = 1.0
    assert ds.topk_hits(logits, torch.tensor([5, 7]), 1).tolist() == [1.0, 0.0]
    assert ds.topk_hits(torch.zeros(1, 1000), torch.tensor([4]), 5).tolist() == [1.0]
    assert ds.topk_hits(torch.zeros(1, 1000), torch.tensor([5]), 5).tolist() == [0.0]


def test_classifier_outputs_are_shared_between_metrics(batch):
    pred, gt = batch
    clf = StandIn()
    labels = torch.zeros(12, dtype=torch.int64)
    suite = MetricSuite(["top1", "top5", "top1_agree"], classifier=clf)
    suite.update(pred, gt, labels)
    assert clf.calls == 2  # one pass over pred, one over gt
    pred.mul_(0.5)  # an in-place change must not reuse stale outputs
    suite.update(pred, gt, labels)
    # Nothing is kept between batches (no cache keyed on tensors): the next batch runs both sides again.
    assert clf.calls == 4


def test_label_errors(batch):
    pred, _ = batch
    clf = StandIn()
    with pytest.raises(ValueError, match="expected 12 labels"):
        MF.top1(pred, torch.zeros(3, dtype=torch.int64), classifier=clf)
    with pytest.raises(ValueError, match="label of image 2 is 1000"):
        MF.top1(pred, torch.tensor([0, 1, 1000] + [0] * 9), classifier=clf)
    with pytest.raises(TypeError, match="integer class indices"):
        MF.top1(pred, torch.zeros(12), classifier=clf)
    with pytest.raises(ValueError, match="needs class labels"):
        metrics.create_metric("top1", classifier=clf).update(pred)
    with pytest.raises(TypeError, match="spec string or an object"):
        MF.top1(pred, torch.zeros(12, dtype=torch.int64), classifier=42)


def reference_frechet(a: np.ndarray, b: np.ndarray) -> float:
    """Direct computation, written independently: Tr(sqrtm(S_a S_b)) as the sum of square roots of the eigenvalues
    of sqrtm(S_a) S_b sqrtm(S_a) (a symmetric PSD matrix with the same spectrum)."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root_a = scipy.linalg.sqrtm(sa).real
    eigenvalues = np.linalg.eigvalsh(root_a @ sb @ root_a)
    trace_sqrt = np.sum(np.sqrt(np.clip(eigenvalues, 0, None)))
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(sa) + np.trace(sb) - 2 * trace_sqrt)


def test_frechet_distance_against_direct_scipy_computation():
    rng = np.random.default_rng(1)
    a = rng.normal(0, 1, (200, 16))
    b = rng.normal(0.3, 1.5, (150, 16)) @ rng.normal(0, 0.5, (16, 16))
    ours = ds.frechet_distance(a, b)
    assert ours == pytest.approx(reference_frechet(a, b), rel=1e-6)
    assert ds.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    # The plain scipy formula, term for term.
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    plain = np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(sa + sb - 2 * scipy.linalg.sqrtm(sa @ sb).real)
    assert ours == pytest.approx(plain, rel=1e-9)


def test_fid_metric_streams_features(batch):
    pred, gt = batch
    clf = StandIn()
    m = metrics.create_metric("fid_effl0", classifier=clf)
    m.update(pred[:6], gt[:6])
    m.update(pred[6:], gt[6:])
    expected = ds.frechet_distance(clf.features(pred).double().numpy(), clf.features(gt).double().numpy())
    assert m.compute() == pytest.approx(expected, rel=1e-9)
    with pytest.raises(ValueError, match="no per-image values"):
        m.values()
    with pytest.raises(ValueError, match="at least 2"):
        MF.fid_effl0(pred[:1], gt[:1], classifier=clf)


def _real_classifier_and_photos():
    try:
        from metrics.classifier import load_classifier
    except ImportError as exc:  # the classifier package is another engineer's area
        pytest.skip(f"metrics.classifier not importable: {exc}")
    clf = load_classifier("efficientnet-lite0", backend="torch")
    photos = [skimage.data.astronaut(), skimage.data.chelsea(), skimage.data.coffee(), skimage.data.rocket()]
    gt = torch.stack([torch.from_numpy(np.ascontiguousarray(p[:256, :256])).permute(2, 0, 1) for p in photos])
    weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    luma = (gt.float() * weights).sum(1, keepdim=True)
    faded = (luma + 0.3 * (gt.float() - luma)).round().clamp(0, 255).to(torch.uint8)
    return clf, gt, faded


def test_real_classifier_on_samples():
    """EfficientNet-Lite0 (torch backend) through the metrics: agreement and accuracy on real photos."""
    clf, gt, _ = _real_classifier_and_photos()
    assert MF.top1_agree(gt, gt, classifier=clf) == 1.0
    # Labels = the classifier's own top-1 on the photos: top1 is then exactly 1 (same tensors, same batch).
    own = torch.argmax(clf.logits(gt), dim=1)
    assert MF.top1(gt, own, classifier=clf) == 1.0
    # Chelsea is a tabby cat: ImageNet classes 281..285 are domestic cats; one of them is in the top 5.
    chelsea = gt[1:2]
    assert max(MF.top5(chelsea, torch.tensor([c]), classifier=clf) for c in range(281, 286)) == 1.0


@pytest.mark.slow
def test_real_classifier_fid():
    """FID of the photos against themselves ~0, against a faded copy clearly larger (1280-d sqrtm: slow on CPU)."""
    clf, gt, faded = _real_classifier_and_photos()
    same = MF.fid_effl0(gt, gt, classifier=clf)
    different = MF.fid_effl0(faded, gt, classifier=clf)
    assert different > 0
    assert abs(same) < 1e-3 * different


def test_suite_with_fid_runs_the_classifier_once_per_side(batch):
    pred, gt = batch
    clf = StandIn()
    suite = MetricSuite(["top1", "top1_agree", "fid_effl0"], classifier=clf)
    suite.update(pred, gt, torch.zeros(12, dtype=torch.int64))
    assert clf.calls == 4  # logits + features (the stand-in has no logits_and_features), once per side
    assert set(suite.summary()) == {"top1", "top1_agree", "fid_effl0"}
    assert set(suite.columns()) == {"top1", "top1_agree"}
