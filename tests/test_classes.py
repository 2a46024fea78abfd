from onconet.classes import RESPONSE_CLASSES, response_category, response_class


def test_thresholds_follow_design():
    # PMR needs both the ratio and the absolute drop.
    assert response_category(10.0, 7.0) == "PMR"
    assert response_category(2.0, 1.3) == "SMD"  # ratio met, drop 0.7 < 0.8
    # PMD needs both the ratio and the absolute rise, or a new lesion.
    assert response_category(3.0, 3.9) == "PMD"
    assert response_category(2.0, 2.7) == "SMD"  # ratio met, rise 0.7 < 0.8
    assert response_category(5.0, 5.0, new_lesion=True) == "PMD"
    # CMR: nothing above the reference at follow-up.
    assert response_category(8.0, 1.9, reference_suv=2.2) == "CMR"
    assert response_category(8.0, 2.5, reference_suv=2.2) == "PMR"


def test_class_mapping():
    assert [response_class(c) for c in ("CMR", "PMR", "SMD", "PMD")] == [
        "response",
        "response",
        "stable",
        "progression",
    ]
    assert RESPONSE_CLASSES == ("response", "stable", "progression")
