"""The instruments the demo imitates: real wavelength coverage, resolution and target mix.

Default pixel counts are far below the real detectors (HARPS has 313,000 pixels per spectrum)
so that 2400 demo spectra fit in a few hundred MB; the wavelength ranges are the real ones.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Setting:
    """One instrument configuration (arm, grating or cross-disperser setting)."""

    name: str
    wmin_aa: float
    wmax_aa: float
    resolving_power: tuple[float, float]  # range drawn from (slit widths, gratings)
    npix: int  # default pixel count of the demo


@dataclass(frozen=True, slots=True)
class Instrument:
    key: str  # folder name
    instrume: str  # INSTRUME as the archive writes it
    telescop: str  # TELESCOP as the archive writes it
    fmt: str  # 'eso', 'sdss', 'image1d', 'fibres', 'table', 'table-rows'
    settings: tuple[Setting, ...]
    share: float  # share of its format family's spectra
    classes: tuple[float, float, float]  # probability of star, qso, galaxy
    snr: tuple[float, float]
    mag: tuple[float, float]  # magnitude range of stars; quasars and galaxies are fainter
    years: tuple[int, int]
    aperture_arcsec: float


def _s(name: str, lo: float, hi: float, r: tuple[float, float], npix: int) -> Setting:
    return Setting(name, lo, hi, r, npix)


INSTRUMENTS: tuple[Instrument, ...] = (
    Instrument(
        "HARPS", "HARPS", "ESO-3.6", "eso",
        (_s("", 3780, 6910, (115000, 115000), 6000),),
        0.35, (0.88, 0.04, 0.08), (20, 150), (4, 11), (2004, 2021), 1.0,
    ),
    Instrument(
        "FEROS", "FEROS", "MPG/ESO-2.2", "eso",
        (_s("", 3500, 9200, (48000, 48000), 6000),),
        0.20, (0.85, 0.05, 0.10), (15, 150), (5, 12), (2003, 2021), 2.0,
    ),
    Instrument(
        "UVES", "UVES", "ESO-VLT-U2", "eso",
        (
            _s("RED580", 4800, 6800, (40000, 50000), 4000),
            _s("BLUE390", 3280, 4560, (40000, 50000), 4000),
            _s("RED860", 6600, 10600, (40000, 50000), 4000),
        ),
        0.20, (0.55, 0.25, 0.20), (10, 120), (8, 17), (2000, 2021), 1.0,
    ),
    Instrument(
        "XSHOOTER", "XSHOOTER", "ESO-VLT-U2", "eso",
        (
            _s("UVB", 3000, 5600, (4000, 9700), 3000),
            _s("VIS", 5500, 10200, (6500, 11000), 3500),
            _s("NIR", 10200, 24800, (4000, 8100), 3000),
        ),
        0.25, (0.35, 0.35, 0.30), (5, 80), (12, 19), (2009, 2021), 0.9,
    ),
    Instrument(
        "BOSS", "BOSS", "SDSS 2.5-M", "sdss",
        (_s("", 3600, 10400, (1560, 2650), 4600),),
        0.70, (0.25, 0.20, 0.55), (5, 40), (15.5, 20.5), (2009, 2019), 2.0,
    ),
    Instrument(
        "SDSS", "SDSS", "SDSS 2.5-M", "sdss",
        (_s("", 3800, 9200, (1850, 2200), 3830),),
        0.30, (0.25, 0.20, 0.55), (5, 40), (15.5, 20.5), (2000, 2008), 3.0,
    ),
    Instrument(
        "BC", "B&C", "ESO-1.52M", "image1d",
        (
            _s("grating 23", 3600, 7200, (1000, 2500), 2000),
            _s("grating 25", 5500, 9000, (1000, 2500), 2000),
        ),
        0.60, (0.55, 0.05, 0.40), (10, 80), (8, 15), (1978, 1999), 2.0,
    ),
    Instrument(
        "IDS", "IDS", "INT", "image1d",
        (_s("R300V", 3800, 6800, (1000, 3000), 2000),),
        0.40, (0.55, 0.05, 0.40), (10, 80), (9, 16), (1984, 1999), 1.5,
    ),
    Instrument(
        "AAOMEGA", "AAOMEGA-2DF", "AAT", "fibres",
        (_s("580V+385R", 3700, 8800, (1300, 1700), 2600),),
        1.00, (0.15, 0.25, 0.60), (5, 30), (16, 19.5), (2006, 2016), 2.1,
    ),
    Instrument(
        "ISIS", "ISIS", "WHT", "table",
        (_s("R300B+R158R", 3500, 7000, (1000, 2500), 3000),),
        0.35, (0.40, 0.20, 0.40), (5, 60), (12, 18), (1995, 2020), 1.0,
    ),
    Instrument(
        "GMOS-S", "GMOS-S", "Gemini-South", "table",
        (_s("R400", 4500, 9000, (1500, 2000), 3000),),
        0.25, (0.40, 0.20, 0.40), (5, 60), (15, 20), (2004, 2020), 0.75,
    ),
    Instrument(
        "HECTOSPEC", "HECTOSPEC", "MMT", "table-rows",
        (_s("270", 3700, 9200, (1000, 1500), 4600),),
        0.40, (0.40, 0.20, 0.40), (5, 60), (15, 20), (2004, 2020), 1.5,
    ),
)  # fmt: skip

# Share of all spectra per format family; 'table' covers both one-row-per-pixel and multi-row.
FORMAT_SHARE = {"eso": 0.45, "sdss": 0.25, "image1d": 0.10, "fibres": 0.10, "table": 0.10}
FAMILY = {"table-rows": "table"}


def family(inst: Instrument) -> str:
    return FAMILY.get(inst.fmt, inst.fmt)


# The file_format name the ingest uses for each writer.
FILE_FORMAT = {
    "eso": "eso-phase3",
    "sdss": "sdss",
    "image1d": "image1d",
    "fibres": "image1d",
    "table": "bintable",
    "table-rows": "bintable",
}
