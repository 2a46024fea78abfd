"""Body-size normalisers for the SUV variants: body weight, lean body mass, ideal weight, surface area.

Each returns the quantity the activity is normalised by: grams for the mass-based variants, cm² for body
surface area (so SUVbsa comes out in cm²/mL, the DICOM unit CM2ML). Weight in kg, height in m.

Sex: ``M`` and ``F`` use their own equation. ``O`` (other) and ``U`` (unknown) use the mean of the male and
female equations, as the IBSI SUV manual's reference objects do; anything else raises.

>>> round(lbm_james(70.0, 1.75, "M"), 3)   # 1.10 W - 128 (W / H[cm])^2, in kg
56.52
>>> round(bsa_du_bois(70.0, 1.75), 4)       # m²
1.8481
"""

from __future__ import annotations

from collections.abc import Callable

#: accepted PatientSex codes (DICOM: M, F, O; many exports also write U or leave it empty)
_MALE, _FEMALE, _MIXED = "M", "F", ("O", "U")


def _by_sex(sex: str, male: Callable[[], float], female: Callable[[], float]) -> float:
    code = (sex or "").strip().upper()
    if code == _MALE:
        return male()
    if code in (_FEMALE, "W"):
        return female()
    if code in _MIXED:
        return 0.5 * (male() + female())
    raise ValueError(f"PatientSex {sex!r} is not one of M, F, O")


def lbm_james(weight_kg: float, height_m: float, sex: str) -> float:
    """Lean body mass in kg by James (1976), the "James-128" form QIBA and PERCIST use."""
    height_cm = 100.0 * height_m
    return _by_sex(
        sex,
        lambda: 1.10 * weight_kg - 128.0 * (weight_kg / height_cm) ** 2,
        lambda: 1.07 * weight_kg - 148.0 * (weight_kg / height_cm) ** 2,
    )


def lbm_janmahasatian(weight_kg: float, height_m: float, sex: str) -> float:
    """Lean body mass in kg by Janmahasatian et al. (2005), from weight and BMI."""
    bmi = weight_kg / height_m**2
    return _by_sex(
        sex,
        lambda: 9270.0 * weight_kg / (6680.0 + 216.0 * bmi),
        lambda: 9270.0 * weight_kg / (8780.0 + 244.0 * bmi),
    )


def ideal_body_weight(height_m: float, sex: str) -> float:
    """Ideal body weight in kg (the Devine-style linear form in height used by the IBSI SUV manual)."""
    height_cm = 100.0 * height_m
    return _by_sex(
        sex,
        lambda: 48.0 + 1.06 * (height_cm - 152.0),
        lambda: 45.5 + 0.91 * (height_cm - 152.0),
    )


def bsa_du_bois(weight_kg: float, height_m: float) -> float:
    """Body surface area in m² by Du Bois & Du Bois (1916), as in Kim et al.'s SUVbsa (JNM 1994)."""
    return 0.007184 * weight_kg**0.425 * (100.0 * height_m) ** 0.725
