"""Frame classification: image type, focus/test exclusion, target kind.

Everything here is ordered data, not code paths, so the order of precedence can be read (and
configured) in one place and the database can record *which* rule decided:

1. Image type: IMAGETYP header -> file-name type token (NINA) -> OBJECT equal to BIAS/DARK/FLAT
   (or starting with FLAT, e.g. 'FlatWizard') -> science. The original typed frames from the file
   name only, and by first letters, so an object called 'DAWN' became a dark.
2. Exclusion: the first matching rule of ``ExclusionRules`` (focus, then test by default).
   Excluded frames are still fully classified; callers record them, they do not drop them.
3. Target: 'tile' (``T`` + exactly 5 digits, so 'TOI270' is not tile 270), 'too', 'standard' or
   'named'. Event and standard-star names are recognised by anchored patterns, never by substring
   (the original's 'AT'/'SN'/'SA' substrings matched ordinary names).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .folders import FolderInfo
from .names import TYPE_TOKEN_FAMILIES, ParsedName

__all__ = [
    "DEFAULT_EXCLUSION_CONFIG",
    "TILE_RE",
    "Classification",
    "ExclusionRule",
    "ExclusionRules",
    "classify",
    "is_event_name",
    "is_standard_star",
    "is_tile_name",
    "normalise_imagetyp",
    "normalise_objtype",
    "tile_index",
]

TILE_RE = re.compile(r"^T\d{5}$", re.ASCII)


def is_tile_name(s: str | None) -> bool:
    """True for a 7DS sky tile name, ``T`` + exactly five digits."""
    return s is not None and TILE_RE.fullmatch(s) is not None


def tile_index(s: str | None) -> int | None:
    """'T00223' -> 223; anything that is not a tile name -> None."""
    return int(s[1:]) if s is not None and is_tile_name(s) else None


# ---------------------------------------------------------------- image type

_IMAGETYP = {
    "BIAS": "bias",
    "BIAS FRAME": "bias",
    "ZERO": "bias",
    "ZERO FRAME": "bias",
    "DARK": "dark",
    "DARK FRAME": "dark",
    "FLAT": "flat",
    "FLAT FIELD": "flat",
    "FLAT FRAME": "flat",
    "FLATFIELD": "flat",
    "LIGHT": "science",
    "LIGHT FRAME": "science",
    "OBJECT": "science",
    "SCIENCE": "science",
}
_CALIB_OBJECTS = {"BIAS": "bias", "DARK": "dark", "FLAT": "flat"}


def normalise_imagetyp(value: str | None) -> str | None:
    """IMAGETYP (any common FITS spelling, padding, case) -> 'bias'/'dark'/'flat'/'science' or None."""
    if not value:
        return None
    return _IMAGETYP.get(" ".join(value.split()).upper())


def _type_from_object(obj: str | None) -> str | None:
    if not obj:
        return None
    upper = obj.upper()
    if upper in _CALIB_OBJECTS:
        return _CALIB_OBJECTS[upper]
    return "flat" if upper.startswith("FLAT") else None


def normalise_objtype(value: str | None) -> str | None:
    """OBJTYPE -> 'RIS'/'IMS'/'WTS'/'ToO'/'calibration', else the stripped raw value (None if empty)."""
    if value is None or not value.strip():
        return None
    raw = value.strip()
    upper = raw.upper()
    if upper in ("RIS", "IMS", "WTS"):
        return upper
    if upper == "TOO":
        return "ToO"
    if upper in ("BIAS", "DARK", "FLAT", "CALIB", "CALIBRATION"):
        return "calibration"
    return raw


# ---------------------------------------------------------------- target names

_SUFFIX = r"(?:_.*)?"  # anchored identifier, optionally followed by '_<anything>'
_EVENT_PATTERNS = (
    r"S\d{6}[a-z]{1,3}",  # LVK superevent, S250206dm
    r"[GM]S\d{6}[a-z]{1,3}",  # LVK test / mock superevents
    r"GW\d{6}(?:_\d{6})?",  # confirmed GW event
    r"GRB\s?\d{6}[A-Z]?",  # GRB240825A
    r"(?:AT|SN)\s?\d{4}[a-z]{1,3}",  # TNS designations, AT2025abc, SN2025xyz
    r"SN\s?\d{4}[A-Z]",  # pre-2016 supernovae, SN1987A
    r"EP\d{6}[a-z]?",  # Einstein Probe, EP250101a
    r"FRB\s?\d{6,8}[A-Z]?",  # FRB20190520B
    r"ZTF\d{2}[a-z]{7}",  # ZTF transient, ZTF21aaaaaaa
    r"IceCube-\d{6}[A-Z]?",  # neutrino alert
)
_STANDARD_PATTERNS = (
    r"LTT\s?\d+",
    r"Feige\s?\d+",
    r"WD\s?\d{4}[+-]\d+",
    r"HR\s?\d+",
    r"GD\s?\d+",
    r"BD\s?[+-]\d+(?:d\d+)?",  # BD+284211, BD+28d4211 (CALSPEC spelling)
    r"HZ\s?\d+",
    r"EG\s?\d+",
    r"G\d+-\d+",
    r"G191-?B2B",
    r"SA\s?\d+",
    r"PG\s?\d{4}[+-]\d+",
)
_EVENT_RE = re.compile(rf"(?:{'|'.join(_EVENT_PATTERNS)}){_SUFFIX}", re.ASCII | re.DOTALL)
_STANDARD_RE = re.compile(
    rf"(?:{'|'.join(_STANDARD_PATTERNS)}){_SUFFIX}", re.ASCII | re.DOTALL | re.IGNORECASE
)
_SHIFT_SUFFIX = "_shift"


def is_event_name(name: str) -> bool:
    """GW/GRB/transient designation (whole-name match, case-sensitive as the designations are)."""
    return _EVENT_RE.fullmatch(name) is not None


def is_standard_star(name: str) -> bool:
    """Spectrophotometric / standard-star name (whole-name match, case-insensitive)."""
    return _STANDARD_RE.fullmatch(name) is not None


# ---------------------------------------------------------------- exclusion rules

# Categories are checked in order, rules within a category in _RULE_KEYS order; the first matching
# rule wins. A plain list of substrings is shorthand for {"object_contains": [...],
# "filename_contains": [...]}. All matching ignores case. "object" is the header OBJECT, or the
# file name's object when the header has none.
DEFAULT_EXCLUSION_CONFIG: dict[str, Any] = {
    "focus": {
        "object_prefix": ["af_"],  # autofocus frames; a prefix only - 'af_' inside a name means nothing
        "object_contains": ["Defocus", "autofocus", "focustest", "FOCUS"],
        "filename_prefix": ["af_"],
        "filename_contains": ["Defocus", "autofocus", "focustest", "FOCUS"],
    },
    "test": {
        "objtype_equals": ["test"],
        "object_equals": ["filtercheck"],
        "object_contains": ["test"],
        "folder_is_test": True,
    },
}

# config key -> (field, operation), in evaluation order within a category
_RULE_KEYS: dict[str, tuple[str, str]] = {
    "objtype_equals": ("objtype", "equals"),
    "object_equals": ("object", "equals"),
    "object_prefix": ("object", "prefix"),
    "object_contains": ("object", "contains"),
    "filename_equals": ("filename", "equals"),
    "filename_prefix": ("filename", "prefix"),
    "filename_contains": ("filename", "contains"),
}


@dataclass(frozen=True)
class ExclusionRule:
    """One rule; ``id`` (e.g. 'focus:object-contains-focus') is what the database records."""

    id: str
    category: str
    field: str  # 'object' | 'objtype' | 'filename' | 'folder'
    op: str  # 'equals' | 'prefix' | 'contains' | 'is-test'
    value: str = ""

    def matches(self, values: Mapping[str, str | None], folder: FolderInfo | None) -> bool:
        if self.op == "is-test":
            return folder is not None and folder.is_test
        subject = values.get(self.field)
        if not subject:
            return False
        subject, needle = subject.casefold(), self.value.casefold()
        if self.op == "equals":
            return subject.strip() == needle
        if self.op == "prefix":
            return subject.startswith(needle)
        return needle in subject


def _rule(category: str, field_name: str, op: str, value: str = "") -> ExclusionRule:
    tail = f"-{value.lower()}" if value else ""
    return ExclusionRule(f"{category}:{field_name}-{op}{tail}", category, field_name, op, value)


def _strings(category: str, key: str, value: Any) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValueError(f"exclusion rules: {category}.{key} must be a list of strings")
    if not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"exclusion rules: {category}.{key} must hold non-empty strings")
    return list(value)


def _rules_from_config(config: Mapping[str, Any]) -> tuple[ExclusionRule, ...]:
    rules: list[ExclusionRule] = []
    for category, spec in config.items():
        if isinstance(spec, Mapping):
            unknown = set(spec) - set(_RULE_KEYS) - {"folder_is_test"}
            if unknown:
                raise ValueError(f"exclusion rules: unknown key(s) in {category!r}: {sorted(unknown)}")
        else:
            subs = _strings(category, "substrings", spec)
            spec = {"object_contains": subs, "filename_contains": subs}
        for key, (field_name, op) in _RULE_KEYS.items():
            for value in _strings(category, key, spec.get(key, [])):
                rules.append(_rule(category, field_name, op, value))
        if spec.get("folder_is_test"):
            rules.append(_rule(category, "folder", "is-test"))
    return tuple(rules)


@dataclass(frozen=True)
class ExclusionRules:
    """Ordered focus/test exclusion rules; the default instance reproduces the documented policy."""

    rules: tuple[ExclusionRule, ...] = field(
        default_factory=lambda: _rules_from_config(DEFAULT_EXCLUSION_CONFIG)
    )

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, extend_defaults: bool = True) -> ExclusionRules:
        """Build from settings: ``{category: [substrings]}`` or ``{category: {key: [...]}}``.

        Keys: objtype_equals, object_equals, object_prefix, object_contains, filename_equals,
        filename_prefix, filename_contains (lists), folder_is_test (bool). By default the config
        *adds* to the defaults (each category's extra rules after its default ones), so an empty
        setting can never silently switch exclusion off; ``extend_defaults=False`` replaces them.
        Use ``without()`` to drop a category. Bad config raises ValueError.
        """
        extra = _rules_from_config(config)
        if not extend_defaults:
            return cls(extra)
        combined = _rules_from_config(DEFAULT_EXCLUSION_CONFIG) + extra
        categories = dict.fromkeys(r.category for r in combined)
        by_id = {r.id: r for r in combined}  # first occurrence of an id keeps its place
        ordered = [r for c in categories for r in by_id.values() if r.category == c]
        return cls(tuple(ordered))

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.category for r in self.rules))

    def without(self, *categories: str) -> ExclusionRules:
        """A copy without some categories (for --no-exclude-focus / --no-exclude-test)."""
        return ExclusionRules(tuple(r for r in self.rules if r.category not in categories))

    def first_match(
        self,
        *,
        object_name: str | None,
        objtype: str | None,
        filename: str | None,
        folder: FolderInfo | None,
    ) -> str | None:
        """Id of the first rule that matches, or None."""
        values = {"object": object_name, "objtype": objtype, "filename": filename}
        for rule in self.rules:
            if rule.matches(values, folder):
                return rule.id
        return None


# ---------------------------------------------------------------- classification


@dataclass(frozen=True)
class Classification:
    """The outcome for one frame. ``target_*`` are None for calibration frames."""

    image_type: str  # 'bias' | 'dark' | 'flat' | 'science'
    type_source: str  # 'imagetyp' | 'filename' | 'object' | 'default'
    excluded_by: str | None
    target_kind: str | None  # 'tile' | 'named' | 'standard' | 'too' | None
    target_name: str | None
    program: str | None
    is_shift: bool = False

    @property
    def excluded(self) -> bool:
        return self.excluded_by is not None


def _clean(s: str | None) -> str | None:
    if s is None:
        return None
    return s.strip() or None


def _image_type(imagetyp: str | None, obj: str | None, parsed: ParsedName | None) -> tuple[str, str]:
    from_header = normalise_imagetyp(imagetyp)
    if from_header:
        return from_header, "imagetyp"
    if parsed is not None and parsed.family in TYPE_TOKEN_FAMILIES and parsed.imagetyp:
        return normalise_imagetyp(parsed.imagetyp) or "science", "filename"
    from_object = _type_from_object(obj)
    if from_object:
        return from_object, "object"
    return "science", "default"


def classify(
    *,
    imagetyp: str | None,
    object_name: str | None,
    objtype: str | None,
    filename: str,
    parsed: ParsedName | None,
    folder: FolderInfo | None,
    is_too_card: bool | None,
    rules: ExclusionRules,
) -> Classification:
    """Classify one frame from its header values, parsed file name and folder.

    ``object_name`` is the header OBJECT; when it is missing the file name's object is used.
    """
    obj = _clean(object_name) or (_clean(parsed.object) if parsed is not None else None)
    image_type, type_source = _image_type(imagetyp, obj, parsed)
    excluded_by = rules.first_match(object_name=obj, objtype=objtype, filename=filename, folder=folder)
    program = normalise_objtype(objtype)
    if program is None and image_type != "science":
        program = "calibration"

    if image_type != "science" or obj is None:
        return Classification(image_type, type_source, excluded_by, None, None, program)

    name, is_shift = obj, False
    if name.lower().endswith(_SHIFT_SUFFIX) and len(name) > len(_SHIFT_SUFFIX):
        name, is_shift = name[: -len(_SHIFT_SUFFIX)], True

    too = (
        program == "ToO"
        or is_too_card is True
        or (folder is not None and folder.is_too)
        or is_event_name(name)
    )
    if is_tile_name(name):
        kind = "tile"
    elif too:
        kind = "too"
    elif is_standard_star(name):
        kind = "standard"
    else:
        kind = "named"
    return Classification(image_type, type_source, excluded_by, kind, name, program, is_shift)
