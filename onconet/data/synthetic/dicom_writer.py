"""Write PET and CT volumes as DICOM series the way scanners do (pydicom, explicit VR little endian).

Every file carries its file meta (MediaStorage SOP class / instance = the dataset's), the patient, study,
series and frame-of-reference modules, the image plane and pixel modules. PET slices store int16 values
with a per-slice RescaleSlope; CT slices store HU + 1024 with RescaleIntercept −1024.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element, write_file_meta_info
from pydicom.sequence import Sequence
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, generate_uid

from onconet.data.synthetic.geometry import Grid
from onconet.data.synthetic.sites import SiteProfile

PET_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.128"
CT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.2"
F18_HALF_LIFE_S = 6586.2
PHILIPS_CREATOR = "Philips PET Private Group"
GE_CREATOR = "GEMS_PETD_01"
INT16_TOP = 32000  # stored PET maximum per slice (a little below 32767 so rounding never overflows)


def make_uid(*parts: object) -> str:
    """A deterministic DICOM UID from ``parts`` (the seed and where the UID is used)."""
    return str(generate_uid(entropy_srcs=["onconet-synth", *map(str, parts)]))


def format_ds(value: float) -> str:
    """A Decimal String of at most 16 characters that keeps 10 significant digits."""
    text = f"{value:.10g}"
    return text if len(text) <= 16 else f"{value:.8g}"


def dicom_date(moment: datetime) -> str:
    return moment.strftime("%Y%m%d")


def dicom_time(moment: datetime) -> str:
    return moment.strftime("%H%M%S")


@dataclass(frozen=True)
class ExamHeader:
    """Everything the headers of one exam's two series say about the patient, study and scan."""

    patient_id: str
    patient_name: str
    sex: str
    age_years: int
    weight_kg: float
    height_m: float
    study_uid: str
    study_datetime: datetime
    accession: str
    frame_of_reference_uid: str
    site: SiteProfile
    station: str


@dataclass(frozen=True)
class PetHeader:
    """The PET-specific header values of one exam."""

    series_uid: str
    series_number: int
    series_datetime: datetime
    acquisition_start: datetime
    injection: datetime
    dose_bq: float
    units: str  # BQML or CNTS
    activity_factor: float = 1.0  # Philips (7053,1009): Bq/mL per count
    suv_factor: float = 1.0  # Philips (7053,1000): SUVbw per count


@dataclass(frozen=True)
class CtHeader:
    """The CT-specific header values of one exam."""

    series_uid: str
    series_number: int
    series_datetime: datetime


def _base_dataset(exam: ExamHeader, modality: str, sop_class: str, grid: Grid) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"] if modality == "CT" else ["ORIGINAL", "PRIMARY"]
    ds.SOPClassUID = sop_class
    ds.StudyDate = dicom_date(exam.study_datetime)
    ds.StudyTime = dicom_time(exam.study_datetime)
    ds.AccessionNumber = exam.accession
    ds.Modality = modality
    ds.Manufacturer = exam.site.manufacturer
    ds.InstitutionName = exam.site.name
    ds.ReferringPhysicianName = ""
    ds.StationName = exam.station
    ds.StudyDescription = "PET/CT WHOLE BODY FDG"
    ds.ManufacturerModelName = exam.site.model
    ds.PatientName = exam.patient_name
    ds.PatientID = exam.patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = exam.sex
    ds.PatientAge = f"{exam.age_years:03d}Y"
    ds.PatientSize = format_ds(exam.height_m)
    ds.PatientWeight = format_ds(exam.weight_kg)
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID = exam.study_uid
    ds.StudyID = exam.accession[-6:]
    ds.FrameOfReferenceUID = exam.frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [format_ds(grid.spacing[1]), format_ds(grid.spacing[2])]
    ds.SliceThickness = format_ds(grid.spacing[0])
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = grid.shape[1]
    ds.Columns = grid.shape[2]
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    return ds


def _encode_elements(ds: Dataset) -> dict[int, bytes]:
    """Each top-level element of ``ds`` encoded as explicit VR little endian, keyed by tag."""
    encoded = {}
    for elem in ds:
        buffer = DicomBytesIO()
        buffer.is_little_endian, buffer.is_implicit_VR = True, False
        write_data_element(buffer, elem)
        encoded[int(elem.tag)] = buffer.getvalue()
    return encoded


class SeriesEncoder:
    """Writes the slices of one series: the elements shared by all slices are encoded only once.

    A DICOM file is a preamble, "DICM", the file meta group and the dataset's elements in ascending
    tag order; encoding the ~70 constant elements once and merging them with each slice's few varying
    ones gives the same bytes as ``Dataset.save_as`` at a fraction of the cost.
    """

    def __init__(self, constant: Dataset):
        self.sop_class = constant.SOPClassUID
        self.constant = _encode_elements(constant)

    def write(self, path: Path, varying: Dataset) -> None:
        """Write one slice whose own elements (SOPInstanceUID, position, pixels, ...) are ``varying``."""
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = self.sop_class
        meta.MediaStorageSOPInstanceUID = varying.SOPInstanceUID
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        meta.ImplementationVersionName = "ONCONET_SYNTH"
        head = DicomBytesIO()
        head.write(b"\x00" * 128 + b"DICM")
        write_file_meta_info(head, meta, enforce_standard=True)
        elements = {**self.constant, **_encode_elements(varying)}
        body = b"".join(elements[tag] for tag in sorted(elements))
        path.write_bytes(head.getvalue() + body)


def _pixel_element(stored: np.ndarray) -> DataElement:
    return DataElement(0x7FE00010, "OW", stored.astype("<i2").tobytes())


def _slice_order(grid: Grid) -> list[int]:
    """Array slice indices in the order scanners number them: head (highest z) first."""
    return list(range(grid.shape[0] - 1, -1, -1))


def bed_index(grid: Grid, k: int, bed_length_mm: float) -> int:
    """The bed position (0 = first, at the head) that acquired array slice ``k``."""
    top = grid.origin[2] + (grid.shape[0] - 1) * grid.spacing[0]
    z = grid.origin[2] + k * grid.spacing[0]
    return int((top - z) // bed_length_mm)


def write_pet_series(
    folder: Path, grid: Grid, values: np.ndarray, exam: ExamHeader, pet: PetHeader, seed: int
) -> list[Path]:
    """Write ``values`` (Bq/mL for BQML, counts for CNTS; array (z, y, x)) as one PET series."""
    folder.mkdir(parents=True, exist_ok=True)
    site = exam.site
    ds = _base_dataset(exam, "PT", PET_SOP_CLASS, grid)
    ds.SeriesDate = dicom_date(pet.series_datetime)
    ds.SeriesTime = dicom_time(pet.series_datetime)
    ds.SeriesDescription = "PET WB AC"
    ds.SeriesInstanceUID = pet.series_uid
    ds.SeriesNumber = pet.series_number
    ds.Units = pet.units
    ds.CountsSource = "EMISSION"
    ds.SeriesType = ["WHOLE BODY", "IMAGE"]
    ds.CorrectedImage = (
        ["ATTN", "DECY", "SCAT", "DTIM", "RAN", "NORM"]
        if site.convention != "siemens"
        else ["NORM", "DTIM", "ATTN", "SCAT", "DECY", "RAN"]
    )
    ds.DecayCorrection = "START"
    ds.RandomsCorrectionMethod = "DLYD"
    ds.AttenuationCorrectionMethod = "CT"
    ds.ReconstructionMethod = site.reconstruction
    ds.NumberOfSlices = grid.shape[0]
    ds.NumberOfTimeSlices = 1
    ds.RescaleIntercept = "0"
    ds.RescaleType = pet.units
    ds.ActualFrameDuration = site.bed_seconds * 1000
    nuclide = Dataset()
    nuclide.CodeValue = "C-111A1"
    nuclide.CodingSchemeDesignator = "SRT"
    nuclide.CodeMeaning = "^18^Fluorine"
    drug = Dataset()
    drug.CodeValue = "C-B1031"
    drug.CodingSchemeDesignator = "SRT"
    drug.CodeMeaning = "Fluorodeoxyglucose F^18^"
    info = Dataset()
    info.Radiopharmaceutical = "Fluorodeoxyglucose"
    info.RadiopharmaceuticalStartTime = dicom_time(pet.injection)
    info.RadiopharmaceuticalStartDateTime = pet.injection.strftime("%Y%m%d%H%M%S.000000")
    info.RadionuclideTotalDose = format_ds(pet.dose_bq)
    info.RadionuclideHalfLife = format_ds(F18_HALF_LIFE_S)
    info.RadionuclidePositronFraction = "0.9673"
    info.RadionuclideCodeSequence = Sequence([nuclide])
    info.RadiopharmaceuticalCodeSequence = Sequence([drug])
    ds.RadiopharmaceuticalInformationSequence = Sequence([info])
    if site.convention == "philips":
        block = ds.private_block(0x7053, PHILIPS_CREATOR, create=True)
        block.add_new(0x00, "DS", format_ds(pet.suv_factor))
        block.add_new(0x09, "DS", format_ds(pet.activity_factor))
    if site.convention == "ge":
        block = ds.private_block(0x0009, GE_CREATOR, create=True)
        block.add_new(0x0D, "DT", pet.acquisition_start.strftime("%Y%m%d%H%M%S.00"))

    encoder = SeriesEncoder(ds)
    paths = []
    for number, k in enumerate(_slice_order(grid), start=1):
        plane = values[k]
        top = float(plane.max())
        slope = float(format_ds(top / INT16_TOP)) if top > 0 else 1.0
        stored = np.rint(plane / slope).astype(np.int16)
        since_start = bed_index(grid, k, site.bed_length_mm) * site.bed_seconds
        acq = pet.acquisition_start + timedelta(seconds=since_start)
        s = Dataset()
        s.SOPInstanceUID = make_uid(seed, pet.series_uid, "slice", k)
        s.AcquisitionDate = dicom_date(acq)
        s.AcquisitionTime = dicom_time(acq)
        s.ContentDate = dicom_date(pet.series_datetime)
        s.ContentTime = dicom_time(pet.series_datetime)
        s.InstanceNumber = number
        s.ImageIndex = number
        s.ImagePositionPatient = [format_ds(v) for v in grid.centre_of((k, 0, 0))]
        s.SliceLocation = format_ds(grid.centre_of((k, 0, 0))[2])
        s.RescaleSlope = format_ds(slope)
        s.FrameReferenceTime = format_ds(1000.0 * since_start + 500.0 * site.bed_seconds)
        s.DecayFactor = format_ds(2.0 ** ((since_start + site.bed_seconds / 2.0) / F18_HALF_LIFE_S))
        s.add(_pixel_element(stored))
        path = folder / f"PT{number:04d}.dcm"
        encoder.write(path, s)
        paths.append(path)
    return paths


def write_ct_series(
    folder: Path, grid: Grid, hu: np.ndarray, exam: ExamHeader, ct: CtHeader, seed: int
) -> list[Path]:
    """Write ``hu`` (array (z, y, x) in Hounsfield units) as one CT series."""
    folder.mkdir(parents=True, exist_ok=True)
    ds = _base_dataset(exam, "CT", CT_SOP_CLASS, grid)
    ds.SeriesDate = dicom_date(ct.series_datetime)
    ds.SeriesTime = dicom_time(ct.series_datetime)
    ds.AcquisitionDate = dicom_date(ct.series_datetime)
    ds.AcquisitionTime = dicom_time(ct.series_datetime)
    ds.ContentDate = dicom_date(ct.series_datetime)
    ds.ContentTime = dicom_time(ct.series_datetime)
    ds.SeriesDescription = "CT WB LOW DOSE AC"
    ds.SeriesInstanceUID = ct.series_uid
    ds.SeriesNumber = ct.series_number
    ds.KVP = "120"
    ds.ConvolutionKernel = "B30f" if exam.site.convention == "siemens" else "B"
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    ds.WindowCenter = "40"
    ds.WindowWidth = "400"
    stored = np.clip(np.rint(hu + 1024.0), -32768, 32767).astype(np.int16)
    encoder = SeriesEncoder(ds)
    paths = []
    for number, k in enumerate(_slice_order(grid), start=1):
        s = Dataset()
        s.SOPInstanceUID = make_uid(seed, ct.series_uid, "slice", k)
        s.InstanceNumber = number
        s.ImagePositionPatient = [format_ds(v) for v in grid.centre_of((k, 0, 0))]
        s.SliceLocation = format_ds(grid.centre_of((k, 0, 0))[2])
        s.add(_pixel_element(stored[k]))
        path = folder / f"CT{number:04d}.dcm"
        encoder.write(path, s)
        paths.append(path)
    return paths
