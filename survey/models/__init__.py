"""The archive's data model: one module per concern, re-exported here for Django."""
from survey.models.archive import Frame, FrameHeader, HeaderLayout, Night, NightFolder, Unit
from survey.models.operations import ApiKey, FileProblem, IngestRun, MissingReport, MonitorState
from survey.models.stats import NightUnitStats, PublicSnapshot, TileFilterProgress
from survey.models.targets import Target, Tile

__all__ = [
    "ApiKey",
    "FileProblem",
    "Frame",
    "FrameHeader",
    "HeaderLayout",
    "IngestRun",
    "MissingReport",
    "MonitorState",
    "Night",
    "NightFolder",
    "NightUnitStats",
    "PublicSnapshot",
    "Target",
    "Tile",
    "TileFilterProgress",
    "Unit",
]
