"""Ingestion speed: STS_001's 267-slice PET read by OncoNet, SimpleITK and dicom2nifti; cohort throughput.

    python benchmarks/ingest.py [--repeats 7] [--patients 12] [--cohort DIR] [--out FILE.md]

Part 1 reads the same 267 files (from ``../shared/realdata/pet_sts001.tar.xz``, extracted to a temporary
folder; page cache warm) with each reader, interleaved round-robin ``--repeats`` times, pinned to one CPU
core, and reports the median and best wall time and the ratio to OncoNet's ``load_suv``. Each reader is
also checked against OncoNet's rescaled volume (same values at the same world positions) so the race is
between readers that agree.

Part 2 ingests a synthetic cohort (``--cohort``, or one generated with ``--patients``) with
``onconet ingest --workers 2`` into an empty cache, then again (everything cached), and reports studies per
second on the machine's cores.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from onconet.data.dicom import load_series  # noqa: E402
from onconet.data.ingest import ingest  # noqa: E402
from onconet.data.suv import load_suv  # noqa: E402


def machine_line() -> str:
    """CPU model, core count, Python and library versions."""
    import pydicom
    import SimpleITK

    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{model}, {os.cpu_count()} cores; Python {platform.python_version()}, "
        f"pydicom {pydicom.__version__}, SimpleITK {SimpleITK.Version_VersionString()}"
    )


def load_average() -> str:
    try:
        return " / ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


# ------------------------------------------------------------------------------------------- readers


def read_onconet_suv(folder: Path, scratch: Path) -> np.ndarray:
    return load_suv(folder).array


def read_onconet_suv_and_write(folder: Path, scratch: Path) -> np.ndarray:
    from onconet.data.cache import write_nifti

    suv = load_suv(folder)
    write_nifti(scratch / "onconet.nii", suv.array, suv.affine)
    return suv.array


def read_simpleitk(folder: Path, scratch: Path) -> np.ndarray:
    import SimpleITK as sitk

    sitk.ProcessObject_SetGlobalWarningDisplay(False)  # STS_001's bed-boundary gaps (0.08 mm) warn each time
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    image = reader.Execute()
    return sitk.GetArrayFromImage(image)  # [k, j, i]


def read_dicom2nifti(folder: Path, scratch: Path) -> np.ndarray:
    import nibabel as nib
    from dicom2nifti import convert_dicom

    result = convert_dicom.dicom_series_to_nifti(
        str(folder), str(scratch / "dicom2nifti.nii"), reorient_nifti=True
    )
    image = result["NII"]
    return np.asarray(image.dataobj) if isinstance(image, nib.Nifti1Image) else image


def read_pydicom_loop(folder: Path, scratch: Path) -> np.ndarray:
    import pydicom

    slices = [pydicom.dcmread(path) for path in sorted(folder.iterdir())]
    slices.sort(key=lambda ds: float(ds.ImagePositionPatient[2]))
    return np.stack([ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept) for ds in slices])


READERS: list[tuple[str, str, Callable[[Path, Path], np.ndarray]]] = [
    ("OncoNet `load_suv`", "read, validate geometry, QIBA SUV", read_onconet_suv),
    ("OncoNet `load_suv` + NIfTI", "as above, then write .nii", read_onconet_suv_and_write),
    ("SimpleITK `ImageSeriesReader`", "GDCM sort + read + rescale (no SUV)", read_simpleitk),
    ("dicom2nifti", "read, validate, rescale, write .nii (no SUV)", read_dicom2nifti),
    ("pydicom loop", "dcmread + pixel_array + sort by z, no checks", read_pydicom_loop),
]


def agreement(name: str, array: np.ndarray, reference: np.ndarray, folder: Path) -> str:
    """Max |difference| in Bq/mL to OncoNet's rescaled volume, after bringing the array to [i, j, k]."""
    if name.startswith("OncoNet"):
        return "reference"
    if name.startswith("SimpleITK") or name.startswith("pydicom"):
        array = np.asarray(array).transpose(2, 1, 0)  # [k, j, i] -> [i, j, k]
    elif name == "dicom2nifti":
        array = np.asarray(array)[:, ::-1, :]  # dicom2nifti flips rows into RAS order
    if array.shape != reference.shape:
        return f"shape {array.shape}"
    return f"{np.max(np.abs(array - reference)):.2g} Bq/mL"


def bench_series(folder: Path, repeats: int) -> list[dict]:
    reference = load_series(folder).array
    times: dict[str, list[float]] = {name: [] for name, _, _ in READERS}
    checks: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for name, _, read in READERS:  # warm-up: imports, page cache, and the agreement check
            checks[name] = agreement(name, read(folder, Path(scratch)), reference, folder)
        for _ in range(repeats):
            for name, _, read in READERS:
                start = time.perf_counter()
                read(folder, Path(scratch))
                times[name].append(time.perf_counter() - start)
    ours = statistics.median(times[READERS[0][0]])
    return [
        {
            "reader": name,
            "does": does,
            "median": statistics.median(times[name]),
            "best": min(times[name]),
            "ratio": statistics.median(times[name]) / ours,
            "check": checks[name],
        }
        for name, does, _ in READERS
    ]


def bench_cohort(cohort: Path, workers: int) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        for label in ("empty cache", "re-run, all cached"):
            start = time.perf_counter()
            summary = ingest(cohort, cache, workers=workers, progress=False)
            seconds = time.perf_counter() - start
            ok = len(summary.ok)
            failed = len(summary.outcomes) - ok
            rows.append(
                {"run": label, "studies": ok, "seconds": seconds, "rate": ok / seconds, "failed": failed}
            )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--realdata", type=Path, default=REPO.parent / "shared" / "realdata")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--cohort", type=Path, help="an existing synthetic cohort's dicom/ folder")
    parser.add_argument("--patients", type=int, default=12, help="patients of the generated cohort")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "ingest.md")
    args = parser.parse_args()

    load_before = load_average()
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(args.realdata / "pet_sts001.tar.xz") as archive:
            archive.extractall(tmp, filter="data")
        folder = Path(tmp) / "mirp_sts_001_fdg_pet" / "image"
        affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
        if affinity:
            os.sched_setaffinity(0, {min(affinity)})  # one core for the series race
        series_rows = bench_series(folder, args.repeats)
        if affinity:
            os.sched_setaffinity(0, affinity)
    if args.cohort is None:
        from onconet.data.synthetic import generate_cohort

        generated = tempfile.TemporaryDirectory()
        cohort_dir = generate_cohort(
            Path(generated.name) / "cohort", patients=args.patients, seed=0
        ).dicom_dir
    else:
        cohort_dir = args.cohort
    cohort_rows = bench_cohort(cohort_dir, args.workers)
    load_after = load_average()

    lines = [
        "# Ingestion benchmark",
        "",
        f"Command: `python benchmarks/ingest.py --repeats {args.repeats} --patients {args.patients} "
        f"--workers {args.workers}`  ",
        f"Machine: {machine_line()}  ",
        f"Load average (1/5/15 min) before / after: {load_before} ; {load_after} (other jobs shared the "
        "machine: absolute times are noisy, the interleaved ratios less so)  ",
        f"Date: {time.strftime('%Y-%m-%d %H:%M')}",
        "",
        f"## STS_001 FDG PET, 267 slices (128×128, GE, implicit VR), one core, {args.repeats} rounds",
        "",
        "| reader | does | median s | best s | × OncoNet load_suv (median) | agrees with OncoNet |",
        "|---|---|---:|---:|---:|---|",
    ]
    for row in series_rows:
        lines.append(
            f"| {row['reader']} | {row['does']} | {row['median']:.3f} | {row['best']:.3f} "
            f"| {row['ratio']:.2f} | {row['check']} |"
        )
    lines += [
        "",
        f"## Synthetic cohort ingest (`onconet ingest --workers {args.workers}`): {cohort_dir}",
        "",
        "Per study: discovery, PET read + SUV, CT read, CT onto the PET grid, two gzip NIfTI writes.",
        "",
        "| run | studies | seconds | studies / s | failed |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in cohort_rows:
        lines.append(
            f"| {row['run']} | {row['studies']} | {row['seconds']:.1f} | {row['rate']:.2f} "
            f"| {row['failed']} |"
        )
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
