"""The classifier interface, on the CPU baseline and the shipped sample data."""

import numpy as np
import pytest

from router import classifier
from router.baseline import BaselineClassifier
from router.config import Settings
from tests.conftest import SAMPLE
from training.data import from_file


@pytest.fixture(scope="module")
def sample(catalog):
    hist, _ = from_file(str(SAMPLE / "history.jsonl"), catalog)
    test, _ = from_file(str(SAMPLE / "test.jsonl"), catalog)
    return hist, test


@pytest.fixture(scope="module")
def fitted(sample, catalog):
    hist, _ = sample
    return BaselineClassifier(classes=catalog.ids).fit(hist.texts, hist.labels)


def test_interface_shape_and_probabilities(fitted, sample, catalog):
    _, test = sample
    proba = fitted.predict_proba(test.texts[:50])
    assert proba.shape == (50, 70)
    assert list(fitted.classes_) == catalog.ids
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-6)
    assert (proba >= 0).all()
    assert fitted.predict(test.texts[:3]).tolist() == [catalog.ids[i] for i in proba[:3].argmax(1)]
    assert fitted.predict_proba([]).shape == (0, 70)


def test_accuracy_on_held_out_sample_is_far_above_chance(fitted, sample):
    _, test = sample
    acc = (fitted.predict(test.texts) == np.array(test.labels)).mean()
    assert acc > 0.6, acc  # chance is ~1/70


def test_departments_without_labels_get_zero(catalog):
    texts = ["停水了没水用", "没水了", "水压太低", "路灯坏了", "路灯不亮", "路灯闪烁"] * 2
    labels = ["water-supply"] * 3 + ["urban-mgmt"] * 3
    labels = labels * 2
    clf = BaselineClassifier(classes=catalog.ids).fit(texts, labels)
    proba = clf.predict_proba(["家里停水"])
    seen = [catalog.ids.index("water-supply"), catalog.ids.index("urban-mgmt")]
    assert proba[0, seen].sum() == pytest.approx(1)
    assert clf.predict(["家里停水"])[0] == "water-supply"


def test_save_load_roundtrip(fitted, sample, tmp_path):
    _, test = sample
    fitted.save(tmp_path / "m")
    again = classifier.load(tmp_path / "m", Settings())
    assert isinstance(again, BaselineClassifier)
    np.testing.assert_allclose(again.predict_proba(test.texts[:20]), fitted.predict_proba(test.texts[:20]))


def test_errors():
    with pytest.raises(ValueError, match="at least two departments"):
        BaselineClassifier().fit(["a", "b"], ["x", "x"])
    with pytest.raises(ValueError, match="not in the department list"):
        BaselineClassifier(classes=["x"]).fit(["a", "b", "c", "d"], ["x", "y", "x", "y"])
    with pytest.raises(ValueError, match="unknown model kind"):
        classifier.make("svm")
