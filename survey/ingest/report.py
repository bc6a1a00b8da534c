"""Human-readable plan and final report of an ingest run."""
from __future__ import annotations

from survey.ingest.engine import IngestReport
from survey.ingest.plan import FolderPlan

KINDS = ("science", "bias", "dark", "flat", "excluded")


def format_plan(plans: list[FolderPlan]) -> str:
    lines = [f"{'folder':40} {'files':>7} {'to read':>8} {'unchanged':>10} {'vanished':>9}"]
    for p in plans:
        lines.append(f"{p.ref.unit_dir + '/' + p.ref.name:40} {len(p.listing.files):7d} {len(p.to_read):8d} {p.unchanged:10d} {len(p.vanished):9d}")
    lines.append(f"{len(plans)} folders, {sum(len(p.to_read) for p in plans)} files to read")
    return "\n".join(lines)


def format_report(report: IngestReport) -> str:
    c = report.counts
    lines = [f"Ingest run {report.run_id}: {report.status} (exit {report.exit_code})"]
    if report.table:
        lines.append(f"{'night unit':18} " + " ".join(f"{k:>9}" for k in KINDS))
        for key, row in report.table.items():
            lines.append(f"{key:18} " + " ".join(f"{row.get(k, 0):9d}" for k in KINDS))
    lines.append(
        "folders {folders}, files {files}: new {new}, updated {updated}, unchanged {unchanged}, excluded {excluded}, "
        "problems {problems}, still failing {failing}, deferred {deferred}, missing from disk {missing}, "
        "duplicate IMAGEIDs {duplicates}, headers read {headers_read}".format(
            **{k: c.get(k, 0) for k in ("folders", "files", "new", "updated", "unchanged", "excluded", "problems", "failing",
                                        "deferred", "missing", "duplicates", "headers_read")}
        )
    )
    lines.append(f"{report.duration_s:.2f} s, {report.files_per_s:,.0f} headers/s; log: {report.log_file}")
    if report.phases:
        reading = report.phases.get("read_write", (0.0, 0.0))[0]
        lines.append("time: " + ", ".join(f"{name} {wall:.2f} s" for name, (wall, _) in report.phases.items())
                     + (f"; reading and writing {c.get('headers_read', 0) / reading:,.0f} headers/s" if reading > 0 else ""))
    return "\n".join(lines)
