"""The ingest engine end to end on generated 7DT archives (SQLite and PostgreSQL)."""
from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from datetime import date, datetime

import pytest

from rawdata.sample import corrupt_helpers
from survey.models import FileProblem, Frame, IngestRun, NightFolder, NightUnitStats, Target, Tile
from tests.integration.snapshot import catalogue_snapshot

pytestmark = pytest.mark.django_db


def catalogued(**filters):
    return Frame.objects.filter(excluded_by="", **filters)


def test_counts_match_the_generator_record(sample_root, manifest, ingest):
    run = ingest(sample_root)
    assert run.code == 0, run.out + run.err
    expected = Counter(f.image_type for f in manifest.files if not f.excluded)
    got = Counter(catalogued().values_list("image_type", flat=True))
    assert got == expected
    assert Frame.objects.exclude(excluded_by="").count() == sum(1 for f in manifest.files if f.excluded)
    assert Frame.objects.count() == len(manifest.files)
    science_filters = Counter(f.filter for f in manifest.files if f.image_type == "science" and not f.excluded)
    assert Counter(catalogued(image_type="science").values_list("filter", flat=True)) == science_filters
    tiles = Counter(f.tile for f in manifest.files if f.tile and not f.excluded)
    assert Counter(catalogued().exclude(tile=None).values_list("tile__name", flat=True)) == tiles
    for name, n in tiles.items():
        assert Tile.objects.get(name=name).n_frames == n
    nights = {date.fromisoformat(f.night) for f in manifest.files}
    assert set(Frame.objects.values_list("night__date", flat=True)) == nights


def test_targets_are_created_with_kinds(sample_root, manifest, ingest):
    assert ingest(sample_root).code == 0
    kinds = dict(Target.objects.values_list("name", "kind"))
    assert kinds["LTT1020"] == Target.Kind.STANDARD
    assert kinds[manifest.scenarios["too_event"]] == Target.Kind.TOO
    assert kinds["NGC6121"] == Target.Kind.NAMED
    assert "NGC6121_shift" not in kinds  # a dithered run belongs to its target
    assert catalogued(target__name="NGC6121", is_shift=True).count() == sum(
        1 for f in manifest.files if f.object == "NGC6121_shift" and not f.excluded
    )
    too = catalogued(target__name=manifest.scenarios["too_event"])
    assert too.exists() and not too.filter(is_too=False).exists()


def test_exclusions_are_recorded_with_their_rule(sample_root, manifest, ingest):
    assert ingest(sample_root).code == 0
    excluded = dict(Frame.objects.exclude(excluded_by="").values_list("filename", "excluded_by"))
    for f in manifest.files:
        name = os.path.basename(f.path)
        if f.excluded:
            category = excluded[name].split(":")[0]
            # "Defocus_test_..." is both a focus and a test frame: either rule may claim it.
            assert category == f.excluded or ("focus" in name.lower() and category in {"focus", "test"}), name
        else:
            assert name not in excluded


def test_second_run_reads_nothing_and_changes_nothing(sample_root, ingest):
    assert ingest(sample_root).code == 0
    before = catalogue_snapshot()
    again = ingest(sample_root)
    assert again.code == 0
    run = IngestRun.objects.order_by("-id").first()
    assert run.n_headers_read == 0 and run.n_new == 0 and run.n_updated == 0
    assert run.n_unchanged == Frame.objects.count()
    assert catalogue_snapshot() == before


def test_changed_file_is_reread_and_updated_in_place(sample_root, ingest):
    assert ingest(sample_root).code == 0
    frame = catalogued(image_type="science").order_by("id").first()
    st = os.stat(frame.path)
    os.utime(frame.path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    run = ingest(sample_root)
    assert run.code == 0
    again = Frame.objects.get(path=frame.path)
    assert again.id == frame.id
    assert again.file_mtime_ns == st.st_mtime_ns + 10**9
    last = IngestRun.objects.order_by("-id").first()
    assert (last.n_updated, last.n_new, last.n_headers_read) == (1, 0, 1)


def test_bad_file_and_duplicate_imageid_cost_no_other_frame(sample_root, manifest, ingest):
    folder = sample_root / "7DT01" / "2025-07-01_gain2750"
    names = sorted(p.name for p in folder.glob("*.fits"))
    # A garbage file in the middle of the folder and a copy of a frame (same IMAGEID) under another name.
    corrupt_helpers.write_garbage(folder / (names[len(names) // 2][:-5] + "_x.fits"))
    shutil.copy2(folder / names[3], folder / ("7DT01_20250702_000000_DUPLICATE_m650_1x1_100.0s_0001.fits"))
    run = ingest(sample_root, "--chunk-size", "7")
    assert run.code == 1, "a failed file must give a non-zero exit code"
    assert Frame.objects.count() == len(manifest.files) + 1  # every good frame, and the duplicate too
    problems = dict(FileProblem.objects.values_list("reason", "severity"))
    assert problems["not_fits"] == "error"
    assert problems["duplicate_imageid"] == "warning"
    original = Frame.objects.get(path=str(folder / names[3]))
    assert Frame.objects.filter(image_id=original.image_id).count() == 2
    assert IngestRun.objects.order_by("-id").first().status == IngestRun.Status.FAILED


def test_vanished_file_is_marked_missing_not_deleted(sample_root, ingest):
    assert ingest(sample_root).code == 0
    frame = catalogued(image_type="flat").first()
    os.remove(frame.path)
    assert ingest(sample_root).code == 0
    frame.refresh_from_db()
    assert frame.present is False
    stats = NightUnitStats.objects.get(night=frame.night, unit=frame.unit)
    assert stats.n_missing == 1


def test_truncated_file_is_deferred_then_failed_once_settled(sample_root, ingest):
    folder = sample_root / "7DT02" / "2025-07-02_gain2750"
    victim = sorted(folder.glob("*.fits"))[5]
    with open(victim, "r+b") as fh:
        fh.truncate(os.path.getsize(victim) - 2880)
    run = ingest(sample_root, "--settle-seconds", "3600")  # later flag wins: the file is fresh
    assert run.code == 3
    assert not Frame.objects.filter(path=str(victim)).exists()
    assert not FileProblem.objects.filter(path=str(victim)).exists()
    run = ingest(sample_root, "--settle-seconds", "0")
    assert run.code == 1
    assert FileProblem.objects.get(path=str(victim)).reason == "truncated"


def test_new_data_only_narrows_an_explicit_range(sample_root, ingest):
    run = ingest(sample_root, "--new-data-only", "--bulk-cutoff-date", "2025-06-30", "--start-date", "2024-01-01")
    assert run.code == 0
    nights = set(Frame.objects.values_list("night__date", flat=True))
    assert min(nights) >= date(2025, 7, 1)
    Frame.objects.all().delete()
    run = ingest(sample_root, "--new-data-only", "--bulk-cutoff-date", "2024-01-01",
                 "--start-date", "2025-07-02", "--end-date", "2025-07-02")
    assert run.code == 0
    assert set(NightFolder.objects.filter(frames__isnull=False).values_list("night__date", flat=True)) == {date(2025, 7, 2)}


def test_unit_filter_and_dry_run(sample_root, ingest):
    run = ingest(sample_root, "--dry-run")
    assert run.code == 0 and Frame.objects.count() == 0
    assert IngestRun.objects.get().status == IngestRun.Status.DRY_RUN
    assert ingest(sample_root, "--unit", "7DT02").code == 0
    assert set(Frame.objects.values_list("unit__name", flat=True)) == {"7DT02"}


def test_cleanup_replaces_records_and_keeps_ids_consistent(sample_root, manifest, ingest):
    assert ingest(sample_root).code == 0
    before = catalogue_snapshot()
    run = ingest(sample_root, "--cleanup")
    assert run.code == 0
    assert catalogue_snapshot() == before
    assert Frame.objects.count() == len(manifest.files)


def test_parallel_pool_gives_the_same_catalogue(sample_root, ingest):
    assert ingest(sample_root, "--no-parallel").code == 0
    inline = catalogue_snapshot()
    Frame.objects.all().delete()
    FileProblem.objects.all().delete()
    assert ingest(sample_root, "--parallel", "--workers", "2", "--chunk-size", "40").code == 0
    assert catalogue_snapshot()["frames"] == inline["frames"]


def test_run_record_and_log_file(sample_root, ingest):
    run = ingest(sample_root)
    rec = IngestRun.objects.get()
    assert rec.status == IngestRun.Status.SUCCESS and rec.finished_at and rec.duration_s > 0
    assert rec.n_new == Frame.objects.count() and rec.files_per_s > 0 and rec.peak_rss_mb > 0
    log_text = open(rec.log_file).read()
    assert f"run {rec.id}" in log_text
    assert rec.log_file in run.out


def test_moved_archive_is_followed_not_duplicated(sample_root, tmp_path, ingest):
    assert ingest(sample_root).code == 0
    before = Frame.objects.count()
    moved = tmp_path / "remounted"
    shutil.move(str(sample_root), moved)
    run = ingest(moved)
    assert run.code == 0
    assert Frame.objects.count() == before
    assert not Frame.objects.exclude(path__startswith=str(moved)).exists()
    last = IngestRun.objects.order_by("-id").first()
    assert (last.n_headers_read, last.n_missing) == (0, 0)


def test_deleted_folder_marks_its_frames_missing(sample_root, ingest):
    assert ingest(sample_root).code == 0
    folder = sample_root / "7DT03" / "2025-07-02_gain2750"
    n = Frame.objects.filter(folder__path=str(folder)).count()
    shutil.rmtree(folder)
    assert ingest(sample_root).code == 0
    assert Frame.objects.filter(folder__path=str(folder), present=False).count() == n > 0
    row = NightFolder.objects.get(path=str(folder))
    assert row.present is False and row.state == NightFolder.State.INGESTED
    # The night's cached figures follow: its frames count as missing, no longer as catalogued.
    stats = NightUnitStats.objects.get(night_id=row.night_id, unit_id=row.unit_id)
    assert stats.n_missing == n and stats.n_frames == 0
    tiles = set(Frame.objects.filter(folder=row).exclude(tile=None).values_list("tile_id", flat=True))
    for tile in Tile.objects.filter(id__in=tiles):
        assert tile.n_frames == catalogued(tile=tile, present=True, image_type="science").count()


def test_vanished_folder_statistics_survive_a_killed_run(sample_root, ingest):
    """The folder is marked gone and 'statistics pending' together: a run that dies right after (here:
    the marker left as a killed run leaves it) is completed by the next run."""
    assert ingest(sample_root).code == 0
    folder = sample_root / "7DT03" / "2025-07-02_gain2750"
    row = NightFolder.objects.get(path=str(folder))
    n = Frame.objects.filter(folder=row).count()
    shutil.rmtree(folder)
    Frame.objects.filter(folder=row).update(present=False)
    NightFolder.objects.filter(pk=row.pk).update(present=False, state=NightFolder.State.INGESTING)
    assert NightUnitStats.objects.get(night_id=row.night_id, unit_id=row.unit_id).n_missing == 0  # stale
    assert ingest(sample_root).code == 0
    assert NightUnitStats.objects.get(night_id=row.night_id, unit_id=row.unit_id).n_missing == n > 0
    assert NightFolder.objects.get(pk=row.pk).state == NightFolder.State.INGESTED


def test_frame_times_are_stored_as_django_stores_them(sample_root, ingest):
    """The writer's own date adaptation (SQLite) and COPY (PostgreSQL) store DATE-OBS exactly as the ORM
    would: an ORM save of the value read back leaves the stored text/timestamp unchanged, and it equals
    the header's DATE-OBS."""
    from django.db import connection

    from rawdata.header import read_header

    assert ingest(sample_root).code == 0
    frames = list(Frame.objects.exclude(date_obs=None).order_by("id")[:40])
    assert frames
    with connection.cursor() as cur:
        cur.execute("SELECT id, date_obs FROM survey_frame WHERE id IN (%s)" % ", ".join(str(f.id) for f in frames))
        stored = dict(cur.fetchall())
    for frame in frames:
        header = read_header(frame.path).cards
        if "DATE-OBS" in header:
            assert frame.date_obs.isoformat().startswith(header["DATE-OBS"][:19].replace(" ", "T"))
        frame.save(update_fields=["date_obs"])
    with connection.cursor() as cur:
        cur.execute("SELECT id, date_obs FROM survey_frame WHERE id IN (%s)" % ", ".join(str(f.id) for f in frames))
        assert dict(cur.fetchall()) == stored


@pytest.mark.parametrize("readers", [("--no-parallel",), ("--parallel", "--workers", "2", "--chunk-size", "25")])
def test_headers_are_stored_by_layout_and_read_back_whole(sample_root, ingest, readers):
    """Each header is stored as a shared layout plus its own changed cards, and reads back as the file's
    header card for card (keys, order, types, values), whichever reader process met the layout first."""
    from rawdata.header import read_header
    from survey.models import FrameHeader, HeaderLayout
    from tests.unit.test_header import typed

    assert ingest(sample_root, *readers).code == 0
    headers = list(FrameHeader.objects.select_related("frame", "layout"))
    assert len(headers) == Frame.objects.count() > 50
    for stored in headers:
        assert typed(stored.full_cards) == typed(read_header(stored.frame.path).cards), stored.frame.path
    with_layout = [h for h in headers if h.layout_id is not None]
    assert len(with_layout) > 0.8 * len(headers)
    assert HeaderLayout.objects.count() < len(with_layout) / 4
    # The point of it: a frame's own part is smaller than its header, even in this sample, whose few
    # frames per folder from mixed units and writers make most cards vary (bench data: ~14 %).
    own = sum(len(json.dumps(h.cards)) for h in with_layout)
    assert own < 0.75 * sum(len(json.dumps(h.full_cards)) for h in with_layout)


def test_a_layout_is_stored_once_across_runs(sample_root, ingest):
    """A later run that reads new frames of known layouts stores no new layout: what a layout stores
    does not depend on which of its headers (or which run, or reader process) it was learnt from."""
    from survey.models import FrameHeader, HeaderLayout

    folder = sample_root / "7DT01" / "2025-07-01_gain2750"
    moved = sample_root.parent / "held-back"
    moved.mkdir()
    held = sorted(folder.glob("*.fits"))[-6:]
    for path in held:
        path.rename(moved / path.name)
    assert ingest(sample_root).code == 0
    layouts = set(HeaderLayout.objects.values_list("digest", flat=True))
    for path in held:
        (moved / path.name).rename(path)
    assert ingest(sample_root).code == 0
    new = FrameHeader.objects.filter(frame__path__in=[str(p) for p in held])
    assert new.count() == len(held) and new.exclude(layout=None).exists()
    assert set(HeaderLayout.objects.values_list("digest", flat=True)) == layouts


def test_naive_times_from_a_reader_are_stored_as_utc(sample_root, ingest, monkeypatch):
    """Times reach the writer aware (UTC); a naive one (a reader bug, an old worker) is stored as UTC,
    not refused by PostgreSQL's binary COPY and not shifted by SQLite's adaptation."""
    from datetime import timezone as tz

    from rawdata import extract
    from rawdata.header import read_header

    real = extract.promote

    def naive(cards):
        out = real(cards)
        if out["date_obs"] is not None:
            out["date_obs"] = out["date_obs"].replace(tzinfo=None)
        return out

    monkeypatch.setattr(extract, "promote", naive)
    assert ingest(sample_root, "--no-parallel").code == 0
    frames = list(Frame.objects.exclude(date_obs=None).order_by("id")[:30])
    assert frames
    for frame in frames:
        header = read_header(frame.path).cards
        if "DATE-OBS" in header:
            expected = datetime.fromisoformat(header["DATE-OBS"]).replace(tzinfo=tz.utc)
            assert frame.date_obs == expected, frame.path


def test_a_missing_layout_makes_the_header_unavailable_not_partial(sample_root, ingest, admin_client):
    """A layout row gone (a partial restore): the frame page and the API say the header is not
    available instead of showing the frame's changed cards as if they were its header."""
    from django.db.models import ProtectedError
    from django.urls import reverse

    from survey.models import FrameHeader, HeaderLayout

    assert ingest(sample_root).code == 0
    stored = FrameHeader.objects.exclude(layout=None).select_related("frame").first()
    with pytest.raises(ProtectedError):  # the ORM refuses; a restore that skips the table does not ask
        HeaderLayout.objects.filter(pk=stored.layout_id).delete()
    HeaderLayout.objects.filter(pk=stored.layout_id)._raw_delete(using="default")
    stored = FrameHeader.objects.get(pk=stored.pk)
    with pytest.raises(FrameHeader.DoesNotExist):
        stored.full_cards
    page = admin_client.get(reverse("frame-detail", args=[stored.frame_id]))
    assert page.status_code == 200 and page.context["has_header"] is False
    detail = admin_client.get(reverse("api-frame-detail", args=[stored.frame_id]))
    assert detail.status_code == 200 and detail.json()["header"] is None
