"""Bad input ingested as data: every FITS file astropy ships in its test data, and valid 7DT frames with
random truncations and byte flips. None may crash the run; every file ends catalogued or a problem with a
reason code (never 'internal_error'), and one bad file never costs a good one."""
from __future__ import annotations

import random
import shutil
from pathlib import Path

import astropy
import pytest

from rawdata.sample import corrupt_helpers
from survey.models import FileProblem, Frame
from tests.integration.conftest import run_command

pytestmark = pytest.mark.django_db

ASTROPY_DATA = Path(astropy.__file__).parent


def _astropy_fits_files() -> list[Path]:
    files = []
    for pattern in ("**/tests/data/**/*.fits", "**/tests/data/**/*.fit", "**/tests/data/**/*.fts", "**/tests/data/**/*.fits.fz"):
        files += [p for p in ASTROPY_DATA.glob(pattern) if p.is_file()]
    return sorted(set(files))


def _outcomes(paths: list[Path]) -> dict[str, str]:
    frames = set(Frame.objects.values_list("path", flat=True))
    problems = dict(FileProblem.objects.filter(severity="error").values_list("path", "reason"))
    return {str(p): ("frame" if str(p) in frames else problems.get(str(p), "nothing")) for p in paths}


def test_every_astropy_test_file_is_catalogued_or_a_reasoned_problem(tmp_path, settings):
    settings.GWPORTAL = {**settings.GWPORTAL, "LOG_DIR": str(tmp_path / "logs")}
    sources = _astropy_fits_files()
    assert len(sources) > 50, "astropy's test corpus was not found"
    folder = tmp_path / "root" / "7DT01" / "2025-07-10_gain2750"
    folder.mkdir(parents=True)
    placed = []
    for i, src in enumerate(sources):
        name = f"7DT01_20250711_0{i:05d}_ODD{i}_r_1x1_1.0s_{i % 10000:04d}" + (".fits.fz" if src.name.endswith(".fz") else ".fits")
        shutil.copyfile(src, folder / name)
        placed.append(folder / name)
    run = run_command("ingest_all_nights", "--data-root", str(tmp_path / "root"), "--auto-confirm", "--settle-seconds", "0")
    assert run.code in (0, 1), run.err[-2000:]
    outcomes = _outcomes(placed)
    assert "nothing" not in outcomes.values(), [p for p, o in outcomes.items() if o == "nothing"][:5]
    assert "internal_error" not in outcomes.values(), FileProblem.objects.filter(reason="internal_error").values_list("detail", flat=True)[:3]
    assert sum(o == "frame" for o in outcomes.values()) > 20


@pytest.mark.parametrize("seed", range(6))
def test_damaged_frames_cost_only_themselves(sample_root, manifest, tmp_path, settings, seed):
    settings.GWPORTAL = {**settings.GWPORTAL, "LOG_DIR": str(tmp_path / "logs")}
    rng = random.Random(seed)
    frames = sorted(sample_root.rglob("*.fits"))
    victims = rng.sample(frames, 12)
    for i, path in enumerate(victims):
        size = path.stat().st_size
        if i % 3 == 0:
            corrupt_helpers.truncate(path, rng.randrange(0, size))
        else:
            corrupt_helpers.flip_bytes(path, rng.randrange(1, 40), seed=seed * 100 + i)
    run = run_command("ingest_all_nights", "--data-root", str(sample_root), "--auto-confirm", "--settle-seconds", "0")
    assert run.code in (0, 1), run.err[-2000:]
    outcomes = _outcomes(frames)
    assert "internal_error" not in outcomes.values()
    assert "nothing" not in outcomes.values()
    healthy = [str(p) for p in frames if p not in victims]
    assert all(outcomes[p] == "frame" for p in healthy), "a damaged file cost a healthy one"


def _set_card(path: Path, key: str, field: str) -> None:
    """Rewrite the value of ``key``'s card in place (80-character cards, the header's length unchanged)."""
    data = bytearray(path.read_bytes())
    head = data[: data.find(b"END" + b" " * 77) + 80]
    for at in range(0, len(head), 80):
        if head[at : at + 8] == key.ljust(8).encode():
            data[at : at + 80] = f"{key:<8}= {field:>20}".ljust(80).encode()
            path.write_bytes(bytes(data))
            return
    raise AssertionError(f"{path} has no {key} card")


def test_numbers_beyond_a_column_are_bad_values_not_failures(sample_root, tmp_path, settings):
    """GAIN = 99999999999 or XBINNING = 70000 in a header: the frame is catalogued with those columns
    empty, and the batch it is written in (the rest of the archive) is not lost, on either database."""
    settings.GWPORTAL = {**settings.GWPORTAL, "LOG_DIR": str(tmp_path / "logs")}
    frames = sorted(p for p in sample_root.rglob("*.fits") if b"XBINNING=" in p.read_bytes()[:20000])
    odd = frames[len(frames) // 2]
    _set_card(odd, "GAIN", "99999999999")
    _set_card(odd, "XBINNING", "70000")
    run = run_command("ingest_all_nights", "--data-root", str(sample_root), "--auto-confirm", "--settle-seconds", "0")
    assert run.code in (0, 1), run.err[-2000:]
    frame = Frame.objects.get(path=str(odd))
    assert frame.gain is None and frame.binning is None and frame.naxis1 is not None
    others = Frame.objects.exclude(path=str(odd))
    assert others.count() > 100 and others.exclude(gain=None).exists()
