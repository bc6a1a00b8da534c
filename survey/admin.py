"""Django admin for every model: the raw catalogue, targets, statistics and operations."""
import json

from django.contrib import admin

from survey import models as m


@admin.register(m.Unit)
class UnitAdmin(admin.ModelAdmin):
    list_display = ("name", "dir_name")


@admin.register(m.Night)
class NightAdmin(admin.ModelAdmin):
    list_display = ("date",)
    date_hierarchy = "date"


@admin.register(m.NightFolder)
class NightFolderAdmin(admin.ModelAdmin):
    list_display = ("path", "unit", "night", "state", "file_count", "is_too", "valid", "ingested_at")
    list_filter = ("state", "unit", "is_too", "valid")
    search_fields = ("path", "name")


class FrameHeaderInline(admin.StackedInline):
    """The header as read from the file; stored as a shared layout plus this frame's changes, so read-only."""

    model = m.FrameHeader
    can_delete = False
    fields = readonly_fields = ("whole_header", "layout")

    def has_add_permission(self, request, obj=None) -> bool:  # headers come from the files only
        return False

    @admin.display(description="header cards")
    def whole_header(self, obj: m.FrameHeader) -> str:
        return json.dumps(obj.full_cards, indent=1)


@admin.register(m.Frame)
class FrameAdmin(admin.ModelAdmin):
    list_display = ("filename", "unit", "night", "image_type", "filter", "object", "exptime", "date_obs", "present", "checksum")
    list_filter = ("image_type", "unit", "filter", "checksum", "present", "is_too", "software")
    search_fields = ("filename", "object", "image_id")
    date_hierarchy = "date_obs"
    raw_id_fields = ("folder", "target", "tile", "run", "night")
    show_full_result_count = False
    inlines = [FrameHeaderInline]


@admin.register(m.Tile)
class TileAdmin(admin.ModelAdmin):
    list_display = ("name", "ra", "dec", "n_frames", "n_nights", "n_filters", "last_night", "extension")
    list_filter = ("extension", "in_grid")
    search_fields = ("name",)
    show_full_result_count = False


@admin.register(m.Target)
class TargetAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "ra", "dec", "n_frames", "last_night")
    list_filter = ("kind",)
    search_fields = ("name",)


@admin.register(m.IngestRun)
class IngestRunAdmin(admin.ModelAdmin):
    list_display = ("id", "trigger", "status", "started_at", "duration_s", "n_new", "n_problems", "files_per_s")
    list_filter = ("status", "trigger")


@admin.register(m.FileProblem)
class FileProblemAdmin(admin.ModelAdmin):
    list_display = ("path", "reason", "severity", "attempts", "last_seen", "resolved")
    list_filter = ("reason", "severity", "resolved")
    search_fields = ("path", "detail")


@admin.register(m.NightUnitStats)
class NightUnitStatsAdmin(admin.ModelAdmin):
    list_display = ("night", "unit", "n_science", "n_bias", "n_dark", "n_flat", "n_excluded", "n_problems")


@admin.register(m.TileFilterProgress)
class TileFilterProgressAdmin(admin.ModelAdmin):
    list_display = ("tile", "filter", "n_frames", "n_nights", "last_night")


@admin.register(m.MonitorState)
class MonitorStateAdmin(admin.ModelAdmin):
    list_display = ("name", "status", "host", "pid", "heartbeat_at", "next_check_at")


@admin.register(m.MissingReport)
class MissingReportAdmin(admin.ModelAdmin):
    list_display = ("id", "created_at", "clean", "report_file")


@admin.register(m.ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "prefix", "created_at", "last_used_at", "revoked")
    readonly_fields = ("key_hash", "prefix")
