"""The synthetic cohort's DICOM files are valid and any reader sees the same geometry."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pydicom
import SimpleITK as sitk
from synth_readers import read_csv, read_series

PET_SOP = "1.2.840.10008.5.1.4.1.1.128"
CT_SOP = "1.2.840.10008.5.1.4.1.1.2"
REQUIRED = (
    "SOPClassUID", "SOPInstanceUID", "Modality", "PatientID", "PatientName", "StudyDate", "StudyTime",
    "StudyInstanceUID", "SeriesInstanceUID", "SeriesNumber", "InstanceNumber", "FrameOfReferenceUID",
    "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SliceThickness", "SliceLocation",
    "Rows", "Columns", "InstitutionName", "Manufacturer", "RescaleSlope", "RescaleIntercept",
)  # fmt: skip


def test_every_file_is_valid_dicom(synthetic_cohort, cohort_series):
    truth = read_csv(synthetic_cohort.truth)
    assert {p.name for p in synthetic_cohort.dicom_dir.iterdir()} == {row["patient_id"] for row in truth}
    studies = {row[k] for row in truth for k in ("baseline_study_uid", "followup_study_uid")}
    assert {study for study, _ in cohort_series} == studies
    assert len(cohort_series) == 2 * len(studies)  # one PT and one CT series per study
    sites = {row["patient_id"]: row["site"] for row in truth}
    # Every file of the first patient of each site; the first and last file of every other series.
    fully = {row[k] for row in truth[:2] for k in ("baseline_study_uid", "followup_study_uid")}
    for (study, modality), folder in cohort_series.items():
        files = sorted(folder.glob("*.dcm"))
        checked = files if study in fully else [files[0], files[-1]]
        instance_uids, numbers = set(), set()
        for path in checked:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            for keyword in REQUIRED:
                assert keyword in ds, f"{path}: {keyword} missing"
            meta = ds.file_meta
            assert meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
            assert meta.MediaStorageSOPClassUID == ds.SOPClassUID
            assert meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
            assert ds.SOPClassUID == (PET_SOP if modality == "PT" else CT_SOP)
            assert ds.StudyInstanceUID == study
            assert ds.InstitutionName == sites[ds.PatientID]
            assert ds.PatientID.startswith("SYN") and ds.PatientID == path.parents[2].name
            assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation) == (16, 16, 15, 1)
            assert (ds.SamplesPerPixel, ds.PhotometricInterpretation) == (1, "MONOCHROME2")
            assert [float(v) for v in ds.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
            instance_uids.add(ds.SOPInstanceUID)
            numbers.add(int(ds.InstanceNumber))
            if modality == "PT":
                assert ds.Units in ("BQML", "CNTS") and ds.DecayCorrection == "START"
                assert {"ATTN", "DECY"} <= set(ds.CorrectedImage)
                assert list(ds.SeriesType) == ["WHOLE BODY", "IMAGE"]
                assert float(ds.RescaleIntercept) == 0 and float(ds.RescaleSlope) > 0
                assert int(ds.NumberOfSlices) == len(files) and 1 <= int(ds.ImageIndex) <= len(files)
                assert float(ds.DecayFactor) >= 1.0 and int(ds.ActualFrameDuration) > 0
                drug = ds.RadiopharmaceuticalInformationSequence[0]
                assert float(drug.RadionuclideHalfLife) == 6586.2
                assert float(drug.RadionuclideTotalDose) > 1e8
                assert drug.RadionuclideCodeSequence[0].CodeValue == "C-111A1"
                assert float(ds.PatientWeight) > 30 and float(ds.PatientSize) > 1.3 and ds.PatientSex in "MF"
            else:
                assert float(ds.RescaleIntercept) == -1024 and float(ds.RescaleSlope) == 1
        if study in fully:
            assert len(instance_uids) == len(files) and numbers == set(range(1, len(files) + 1))
        else:
            assert numbers == {1, len(files)}


def test_pet_and_ct_of_a_study_share_the_frame_of_reference(cohort_series):
    frames = defaultdict(set)
    series = set()
    for (study, _), folder in cohort_series.items():
        ds = pydicom.dcmread(next(folder.glob("*.dcm")), stop_before_pixels=True)
        frames[study].add(ds.FrameOfReferenceUID)
        series.add(ds.SeriesInstanceUID)
    assert all(len(uids) == 1 for uids in frames.values())
    assert len({next(iter(uids)) for uids in frames.values()}) == len(frames)
    assert len(series) == len(cohort_series)


def test_dose_weight_and_uptake_differ_between_the_two_exams(synthetic_cohort, cohort_series):
    for row in read_csv(synthetic_cohort.truth):
        headers = []
        for study in (row["baseline_study_uid"], row["followup_study_uid"]):
            ds = pydicom.dcmread(next(cohort_series[(study, "PT")].glob("*.dcm")), stop_before_pixels=True)
            drug = ds.RadiopharmaceuticalInformationSequence[0]
            headers.append((drug.RadionuclideTotalDose, drug.RadiopharmaceuticalStartTime, ds.StudyDate))
            assert ds.StudyDate == row[
                f"{'baseline' if study == row['baseline_study_uid'] else 'followup'}_date"
            ].replace("-", "")
        assert headers[0][0] != headers[1][0] and headers[0][1] != headers[1][1]
        assert headers[0][2] < headers[1][2]


def test_sites_follow_their_vendor_conventions(synthetic_cohort, cohort_series):
    seen = {}
    for row in read_csv(synthetic_cohort.truth):
        folder = cohort_series[(row["baseline_study_uid"], "PT")]
        ds = pydicom.dcmread(next(folder.glob("*.dcm")), stop_before_pixels=True)
        ct = pydicom.dcmread(
            next(cohort_series[(row["baseline_study_uid"], "CT")].glob("*.dcm")), stop_before_pixels=True
        )
        seen[row["site"]] = (ds.Manufacturer, ds.Units, float(ds.PixelSpacing[0]), float(ct.PixelSpacing[0]))
        if ds.Units == "CNTS":
            assert float(ds[0x7053, 0x1000].value) > 0 and float(ds[0x7053, 0x1009].value) > 0
    assert set(seen) == {"internal", "external"}
    assert seen["internal"][1] == "BQML" and seen["external"][1] == "CNTS"
    assert seen["internal"][2] != seen["external"][2]  # voxel sizes differ
    for _, _, pet_mm, ct_mm in seen.values():
        assert ct_mm < pet_mm  # CT finer in-plane


def _sitk_series(folder):
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return reader.Execute()


def test_simpleitk_reads_the_same_geometry_and_values(synthetic_cohort, cohort_series):
    truth = read_csv(synthetic_cohort.truth)
    picks = [next(r for r in truth if r["site"] == site) for site in ("internal", "external")]
    for row in picks:
        for modality in ("PT", "CT"):
            folder = cohort_series[(row["followup_study_uid"], modality)]
            slices = read_series(folder)
            image = _sitk_series(folder)
            first = slices[0]
            origin = tuple(float(v) for v in first.ImagePositionPatient)
            dy, dx = (float(v) for v in first.PixelSpacing)
            dz = float(slices[1].ImagePositionPatient[2]) - origin[2]
            assert image.GetSize() == (int(first.Columns), int(first.Rows), len(slices))
            np.testing.assert_allclose(image.GetOrigin(), origin, atol=1e-4)
            np.testing.assert_allclose(image.GetSpacing(), (dx, dy, dz), atol=1e-4)
            np.testing.assert_allclose(image.GetDirection(), np.eye(3).ravel(), atol=1e-6)
            # Regular slice spacing equal to the slice thickness.
            z = np.array([float(ds.ImagePositionPatient[2]) for ds in slices])
            np.testing.assert_allclose(np.diff(z), dz, atol=1e-4)
            assert abs(dz - float(first.SliceThickness)) < 1e-4
            ours = np.stack(
                [ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept) for ds in slices]
            )
            np.testing.assert_allclose(sitk.GetArrayFromImage(image), ours, rtol=1e-5, atol=1e-3)


def test_ct_shows_the_anatomy(synthetic_cohort, cohort_series):
    lesions = read_csv(synthetic_cohort.lesions)
    row = read_csv(synthetic_cohort.truth)[0]
    slices = read_series(cohort_series[(row["baseline_study_uid"], "CT")])
    hu = np.stack([ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept) for ds in slices])
    assert np.median(hu[:, 0, 0]) < -950  # air at the corner of the field of view
    assert (hu > 500).mean() > 0.002  # bone
    assert ((hu > -900) & (hu < -750)).mean() > 0.01  # lungs
    assert ((hu > -150) & (hu < 100)).mean() > 0.1  # fat and soft tissue
    assert all(float(r["diameter_mm"]) >= 0 for r in lesions)
