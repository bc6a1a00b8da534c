"""Portal forms: GET forms only, so every search is a bookmarkable URL."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from survey.models import FileProblem, Frame, Target, Unit
from survey.queries import DEFAULT_SORT, MAX_RADIUS_DEG, SORTS, Cone, FrameFilter, split_list

PAGE_SIZES = (25, 50, 100, 200)


def parse_angle(text: str, *, hours: bool) -> float:
    """Degrees from '150.12', '10:00:28.6' / '10h00m28.6s' (RA: hours) or '+02:12:21' / '2d12m21s' (Dec)."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    from astropy.coordinates import Angle  # imported lazily: only sexagesimal input needs it
    import astropy.units as u

    try:
        angle = Angle(text, unit=u.hourangle if hours else u.deg)
    except (ValueError, u.UnitsError) as exc:
        raise ValidationError(f"not an angle: {text!r}") from exc
    return float(angle.degree)


class AngleField(forms.CharField):
    """An angle typed as decimal degrees or sexagesimal."""

    def __init__(self, *, hours: bool, **kwargs: Any) -> None:
        self.hours = hours
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> float | None:  # type: ignore[override]
        value = super().to_python(value)
        if value in self.empty_values:
            return None
        return parse_angle(value, hours=self.hours)


class FrameSearchForm(forms.Form):
    """The frame search; `to_filter()` turns it into the query builder's FrameFilter."""

    date_from = forms.DateField(required=False, label="Nights from", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="to", widget=forms.DateInput(attrs={"type": "date"}))
    night = forms.DateField(required=False, label="Night", widget=forms.DateInput(attrs={"type": "date"}))
    unit = forms.MultipleChoiceField(required=False, widget=forms.SelectMultiple(attrs={"size": 4}))
    image_type = forms.MultipleChoiceField(
        required=False, label="Type", choices=Frame.ImageType.choices, widget=forms.SelectMultiple(attrs={"size": 4})
    )
    filter = forms.CharField(required=False, label="Filter(s)", help_text="e.g. m650, r",
                             widget=forms.TextInput(attrs={"list": "known-filters", "size": 10}))
    object = forms.CharField(required=False, label="Object / target", max_length=100,
                             help_text="exact name; * and ? are wildcards", widget=forms.TextInput(attrs={"size": 14}))
    exptime_min = forms.FloatField(required=False, min_value=0, label="Exposure ≥ s", widget=forms.NumberInput(attrs={"step": "any", "style": "width:6em"}))
    exptime_max = forms.FloatField(required=False, min_value=0, label="Exposure ≤ s", widget=forms.NumberInput(attrs={"step": "any", "style": "width:6em"}))
    ra = AngleField(hours=True, label="RA", help_text="deg or hh:mm:ss", widget=forms.TextInput(attrs={"size": 11}))
    dec = AngleField(hours=False, label="Dec", help_text="deg or ±dd:mm:ss", widget=forms.TextInput(attrs={"size": 11}))
    radius = forms.FloatField(required=False, min_value=0, max_value=MAX_RADIUS_DEG, label="Radius °",
                              widget=forms.NumberInput(attrs={"step": "any", "style": "width:5em"}))
    include_excluded = forms.BooleanField(required=False, label="Include excluded (focus/test)")
    sort = forms.CharField(required=False, widget=forms.HiddenInput)
    per_page = forms.TypedChoiceField(required=False, coerce=int, empty_value=50, label="Per page", initial=50,
                                      choices=[(n, n) for n in PAGE_SIZES])

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["unit"].choices = [(u, u) for u in Unit.objects.values_list("name", flat=True)]

    def clean_sort(self) -> str:
        sort = self.cleaned_data.get("sort") or DEFAULT_SORT
        return sort if sort.lstrip("-") in SORTS else DEFAULT_SORT

    def clean_dec(self) -> float | None:
        dec = self.cleaned_data.get("dec")
        if dec is not None and not -90.0 <= dec <= 90.0:
            raise ValidationError("Dec must be within ±90°.")
        return dec

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        cone = [data.get("ra"), data.get("dec"), data.get("radius")]
        if any(v is not None for v in cone) and not all(v is not None for v in cone):
            raise ValidationError("A cone search needs RA, Dec and radius.")
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            raise ValidationError("'Nights from' is after 'to'.")
        lo, hi = data.get("exptime_min"), data.get("exptime_max")
        if lo is not None and hi is not None and lo > hi:
            raise ValidationError("Minimum exposure is above the maximum.")
        return data

    def to_filter(self) -> FrameFilter:
        """Only valid after is_valid()."""
        d = self.cleaned_data
        cone = Cone(d["ra"], d["dec"], d["radius"]) if d.get("radius") is not None else None
        return FrameFilter(
            date_from=d.get("date_from"), date_to=d.get("date_to"), night=d.get("night"),
            units=list(d.get("unit") or []), image_types=list(d.get("image_type") or []),
            filters=split_list(d.get("filter") or ""), object=(d.get("object") or "").strip(),
            exptime_min=d.get("exptime_min"), exptime_max=d.get("exptime_max"), cone=cone,
            include_excluded=bool(d.get("include_excluded")), sort=d.get("sort") or DEFAULT_SORT,
        )


class TargetFilterForm(forms.Form):
    KIND_CHOICES = [("", "all named targets"), *Target.Kind.choices, ("tile", "7DS tiles (observed)")]

    q = forms.CharField(required=False, label="Name contains", max_length=100)
    kind = forms.ChoiceField(required=False, choices=KIND_CHOICES)


class ProblemFilterForm(forms.Form):
    reason = forms.ChoiceField(required=False)
    severity = forms.ChoiceField(required=False, choices=[("", "any"), *FileProblem.Severity.choices])
    resolved = forms.BooleanField(required=False, label="Show resolved too")

    def __init__(self, *args: Any, reasons: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["reason"].choices = [("", "any"), *((r, r) for r in reasons)]


class DashboardForm(forms.Form):
    days = forms.IntegerField(required=False, min_value=1, max_value=3660, initial=90)
    end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
