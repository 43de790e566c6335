"""VOSI capabilities with TAPRegExt, built with vo-models from what the service really offers."""

from __future__ import annotations

from vo_models.tapregext.models import (
    DataLimit,
    DataLimits,
    DataModelType,
    Language,
    LanguageFeature,
    LanguageFeatureList,
    OutputFormat,
    TableAccess,
    TimeLimits,
    UploadMethod,
    Version,
)
from vo_models.vodataservice.models import ParamHTTP
from vo_models.voresource.models import AccessURL, Capability
from vo_models.vosi.capabilities.models import VOSICapabilities

from escape_vo.adql import LANGUAGE_FEATURES
from escape_vo.tap.limits import LIMITS


def _vosi(standard: str, url: str) -> Capability:
    return Capability(
        standard_id=standard,
        interface=[ParamHTTP(role=None, access_url=[AccessURL(value=url, use="full")])],
    )


def _language_features() -> list[LanguageFeatureList]:
    """Declared by the translator itself (escape_vo.adql.features), next to its code."""
    return [
        LanguageFeatureList(
            type=ftype,
            feature=[LanguageFeature(form=form, description=desc) for form, desc in forms],
        )
        for ftype, forms in LANGUAGE_FEATURES.items()
    ]


def tap_capabilities(base_url: str, output_formats: list[OutputFormat]) -> VOSICapabilities:
    """The capabilities of /tap: TAP 1.1 with TAPRegExt, VOSI endpoints, DALI examples."""
    tap = f"{base_url}/tap"
    table_access = TableAccess(
        interface=[
            ParamHTTP(role="std", version="1.1", access_url=[AccessURL(value=tap, use="base")])
        ],
        data_model=[
            DataModelType(value="ObsCore-1.1", ivo_id="ivo://ivoa.net/std/ObsCore#core-1.1"),
        ],
        language=[
            Language(
                name="ADQL",
                version=[
                    Version(value="2.1", ivo_id="ivo://ivoa.net/std/ADQL#v2.1"),
                    Version(value="2.0", ivo_id="ivo://ivoa.net/std/ADQL#v2.0"),
                ],
                description="ADQL 2.1 translated to PostgreSQL; geometry without pgsphere, "
                "served by HEALPix-indexed positions.",
                language_features=_language_features(),
            )
        ],
        output_format=output_formats,
        upload_method=[
            UploadMethod(ivo_id="ivo://ivoa.net/std/TAPRegExt#upload-inline"),
            UploadMethod(ivo_id="ivo://ivoa.net/std/TAPRegExt#upload-http"),
        ],
        retention_period=TimeLimits(default=LIMITS.retention_default, hard=LIMITS.retention_hard),
        execution_duration=TimeLimits(
            default=LIMITS.async_execution_default, hard=LIMITS.async_execution_hard
        ),
        output_limit=DataLimits(
            default=DataLimit(value=LIMITS.maxrec_default, unit="row"),
            hard=DataLimit(value=LIMITS.maxrec_hard, unit="row"),
        ),
        # rows of one uploaded table, and bytes of all the uploads of a request
        upload_limit=DataLimits(
            default=DataLimit(value=LIMITS.upload_max_rows, unit="row"),
            hard=DataLimit(value=LIMITS.upload_max_bytes, unit="byte"),
        ),
    )
    return VOSICapabilities(
        capability=[
            table_access,
            _vosi("ivo://ivoa.net/std/VOSI#capabilities", f"{tap}/capabilities"),
            _vosi("ivo://ivoa.net/std/VOSI#availability", f"{tap}/availability"),
            _vosi("ivo://ivoa.net/std/VOSI#tables-1.1", f"{tap}/tables"),
            _vosi("ivo://ivoa.net/std/DALI#examples", f"{tap}/examples"),
        ]
    )
