"""A saved fit is tamper-evident: edited attributes or draws, flipped bytes and truncated
or foreign files are refused on load, with an explicit forensic escape."""

import json
import shutil
import warnings

import h5py
import numpy as np
import pytest

import bayes_hcc as bh


@pytest.fixture(scope="module")
def saved(tmp_path_factory, example_trial):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bh.ConvergenceWarning)
        fit = bh.WeibullPH().fit(example_trial, "os", random_seed=4, draws=200, tune=200)
    path = tmp_path_factory.mktemp("fits") / "fit.nc"
    fit.save(path)
    return fit, path


def _copy(saved, tmp_path):
    path = tmp_path / "copy.nc"
    shutil.copy(saved[1], path)
    return path


def test_round_trip_verifies_and_keeps_everything(saved):
    fit, path = saved
    back = bh.load_fit(path)
    np.testing.assert_array_equal(back.posterior["log_hr"], fit.posterior["log_hr"])
    assert back.datatree.attrs["content_sha256"] == bh.models.fit.content_digest(back.datatree)
    assert back.random_seed == fit.random_seed


@pytest.mark.parametrize("attr, value", [("random_seed", 999),
                                         ("data_fingerprint", "0" * 64),
                                         ("bayes_hcc_priors", json.dumps(
                                             {"log_hr": {"dist": "Normal", "mu": 0.0,
                                                         "sigma": 0.1}}))])
def test_edited_attribute_is_refused(saved, tmp_path, attr, value):
    path = _copy(saved, tmp_path)
    with h5py.File(path, "r+") as f:
        f.attrs[attr] = value
    with pytest.raises(bh.BayesHCCError, match="does not match its digest"):
        bh.load_fit(path)
    forensic = bh.load_fit(path, verify=False)  # the explicit escape
    assert str(forensic.datatree.attrs[attr]) == str(value)


def test_edited_draw_is_refused(saved, tmp_path):
    path = _copy(saved, tmp_path)
    with h5py.File(path, "r+") as f:
        f["posterior/log_hr"][0, 0] = -3.0
    with pytest.raises(bh.BayesHCCError, match="does not match its digest"):
        bh.load_fit(path)


def test_flipped_bytes_and_foreign_files(saved, tmp_path):
    path = _copy(saved, tmp_path)
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(0)
    for i in rng.choice(np.arange(4096, len(data)), size=2000, replace=False):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(bh.BayesHCCError, match=r"copy\.nc"):
        bh.load_fit(path)
    truncated = tmp_path / "truncated.nc"
    truncated.write_bytes(saved[1].read_bytes()[:5000])
    with pytest.raises(bh.BayesHCCError, match="cannot be read as a saved fit"):
        bh.load_fit(truncated)
    text = tmp_path / "notes.nc"
    text.write_text("not HDF5")
    with pytest.raises(bh.BayesHCCError, match="cannot be read as a saved fit"):
        bh.load_fit(text)
    with pytest.raises(bh.BayesHCCError, match="is a directory"):
        bh.load_fit(tmp_path)
    # a fit or a trial, not a path (TypeError from pathlib)
    with pytest.raises(bh.BayesHCCError, match=r"load_fit: expected the path of a saved fit .* "
                       r"got TrialData\."):
        bh.load_fit(bh.datasets.load_example_trial())


@pytest.mark.parametrize("attr, value, message", [
    ("bayes_hcc_family", "{not json", "not a readable bayes_hcc fit"),
    ("bayes_hcc_family", json.dumps({"name": "cox"}), "unknown family 'cox'"),
    ("spec_toml", "name = 'x'\nendpoint = 'os'\n",
     "stored spec cannot be read.*missing required key 'family'"),
    ("spec_hash", "0" * 64, "stored spec does not match its hash"),
])
def test_bad_attributes_are_named_errors(saved, tmp_path, attr, value, message):
    path = _copy(saved, tmp_path)
    with h5py.File(path, "r+") as f:
        f.attrs[attr] = value
    with pytest.raises(bh.BayesHCCError, match=message):
        bh.load_fit(path, verify=False)
