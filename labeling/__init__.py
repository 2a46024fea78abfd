"""Report parsing (spaCy), labeling functions and a label model: weak labels from radiology reports."""
