"""The computed 7DS tile grid against the checks stated in survey-status.md section 2."""

from __future__ import annotations

import numpy as np
import pytest

from rawdata import tiles


def test_grid_size_and_rings() -> None:
    assert len(tiles.RING_COUNTS) == 142
    assert tiles.N_TILES == 28_519 == sum(tiles.RING_COUNTS)
    assert sum(1 for _ in tiles.iter_tiles()) == 28_519
    last = tiles.tile(tiles.N_TILES - 1)
    assert last.name == "T28518" and last.ring == 141
    assert last.dec == pytest.approx(29.717, abs=1e-3)


@pytest.mark.parametrize(
    ("name", "ra", "dec"),
    [("T13785", 190.0372, -16.1321), ("T09614", 122.4590, -29.7170), ("T00000", 0.0, -90.0)],
)
def test_known_centres(name: str, ra: float, dec: float) -> None:
    t = tiles.tile_by_name(name)
    assert t is not None and t.name == name
    assert abs(t.ra - ra) < 1e-3 and abs(t.dec - dec) < 1e-3
    assert not t.extension


def test_extension_boundary() -> None:
    first = tiles.tile(25472)
    assert first.extension and first.ra == 0.0
    assert first.index == tiles.RING_STARTS[first.ring]  # first tile of its ring
    prev = tiles.tile(tiles.RIS_LAST_INDEX)
    assert not prev.extension and prev.ring == first.ring - 1


def test_bad_indices_and_names() -> None:
    for bad in (-1, tiles.N_TILES, 10**6):
        with pytest.raises(ValueError):
            tiles.tile(bad)
    assert tiles.tile_by_name("T28519") is None  # real survey name, unknown position
    for bad in ("", "T1234", "T123456", "t00001", "X00001", "T0000a", None):
        assert tiles.tile_by_name(bad) is None  # type: ignore[arg-type]
    assert tiles.tile_by_name("T00007 ") == tiles.tile(7)  # FITS string padding
    assert tiles.tile_name(42) == "T00042"


def test_iter_matches_index_lookup() -> None:
    for t in tiles.iter_tiles():
        if t.index % 997 == 0:
            assert tiles.tile(t.index) == t
            assert tiles.tile_by_name(t.name) == t


def test_distance_matches_astropy() -> None:
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    rng = np.random.default_rng(1)
    n = 500
    ra1, ra2 = rng.uniform(0, 360, n), rng.uniform(0, 360, n)
    dec1 = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    dec2 = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    # include near-coincident and near-antipodal pairs
    ra2[:20], dec2[:20] = ra1[:20] + 1e-6, dec1[:20]
    ra2[20:40], dec2[20:40] = ra1[20:40] + 180.0, -dec1[20:40]
    ref = SkyCoord(ra1 * u.deg, dec1 * u.deg).separation(SkyCoord(ra2 * u.deg, dec2 * u.deg)).deg
    ours = np.array([tiles.angular_distance_deg(*args) for args in zip(ra1, dec1, ra2, dec2)])
    assert np.max(np.abs(ours - ref)) < 1e-9


def test_nearest_tile_of_centre_is_itself() -> None:
    rng = np.random.default_rng(2)
    for index in [0, 1, 7, 8, 25471, 25472, tiles.N_TILES - 1, *rng.integers(0, tiles.N_TILES, 300)]:
        t = tiles.tile(int(index))
        assert tiles.nearest_tile(t.ra, t.dec) == t
        assert tiles.nearest_tile(t.ra + 360.0, t.dec) == t


def test_nearest_tile_matches_brute_force() -> None:
    all_tiles = list(tiles.iter_tiles())
    ra = np.radians([t.ra for t in all_tiles])
    dec = np.radians([t.dec for t in all_tiles])
    rng = np.random.default_rng(3)
    for _ in range(200):
        pra = rng.uniform(0, 360)
        pdec = float(np.degrees(np.arcsin(rng.uniform(-1, np.sin(np.radians(30))))))
        cosd = np.sin(np.radians(pdec)) * np.sin(dec) + np.cos(np.radians(pdec)) * np.cos(dec) * np.cos(
            ra - np.radians(pra)
        )
        expected = all_tiles[int(np.argmax(cosd))]
        got = tiles.nearest_tile(pra, pdec)
        d_got = tiles.angular_distance_deg(pra, pdec, got.ra, got.dec)
        d_exp = tiles.angular_distance_deg(pra, pdec, expected.ra, expected.dec)
        assert d_got <= d_exp + 1e-9
