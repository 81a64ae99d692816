"""The handcrafted family: descriptors of real SYSU-MM01 test images, resized to each descriptor's size."""

from __future__ import annotations

import numpy as np
import pytest

from rgbir_reid.data.transforms import load_image
from rgbir_reid.descriptors import describe, input_size
from rgbir_reid.methods import get_family
from reid_tiny import sample_records

pytestmark = pytest.mark.usefixtures("shared_data")


@pytest.mark.parametrize("name, dim", [("hog", 3780), ("lomo", 26960), ("mlbp", 5664)])
def test_extract_describes_each_record_at_the_descriptor_size_in_record_order(name, dim):
    records = sample_records()[::7]  # both modalities, several identities
    assert {r.modality for r in records} == {"visible", "thermal"}
    features, attrs = get_family("handcrafted").extract(None, records, {"descriptor": name}, batch_size=3)
    assert features.shape == (len(records), dim) and features.dtype == np.float32
    assert attrs == {"descriptor": name}
    # Row i is the descriptor of record i, whatever the chunking.
    expected = describe(name, np.stack([load_image(r.path, input_size(name)) for r in records]))
    np.testing.assert_array_equal(features, expected)
    # Different people give different features (not a constant output).
    assert np.linalg.norm(features[0] - features[-1]) > 0


def test_extract_names_an_unknown_descriptor_and_refuses_no_records():
    family = get_family("handcrafted")
    with pytest.raises(ValueError, match="hog, lomo, mlbp"):
        family.extract(None, sample_records()[:1], {"descriptor": "sift"})
    with pytest.raises(ValueError, match="no test records"):
        family.extract(None, [], {"descriptor": "hog"})


def test_handcrafted_family_needs_nothing_from_earlier_stages():
    family = get_family("handcrafted")
    assert not family.trains and not family.needs_cache({}) and not family.needs_conversion({})
