"""DataLink: a "similar spectra" service descriptor on every spectrum.

The descriptor points at /embeddings/similar with this spectrum's DID fixed, k and the model
free; the answer is the VOTable of neighbours, the same as ivo_embedding_distance in ADQL.
"""

from __future__ import annotations

from collections.abc import Iterator

from escape_vo.embeddings.models import MODELS
from escape_vo.embeddings.search import MAX_K, PREFERENCE


def similar_spectra(ctx, row) -> Iterator:
    """Link provider (escape_vo.datalink registry signature: (LinkContext, SpectrumRow))."""
    from escape_vo.datalink.registry import Link
    from escape_vo.spectra.vodoc import Param, ServiceDescriptor

    models = [m for m in PREFERENCE if m in MODELS] + sorted(set(MODELS) - set(PREFERENCE))
    service = ServiceDescriptor(
        descriptor_id="similar-spectra",
        access_url=f"{ctx.base_url}/embeddings/similar",
        input_params=(
            Param(
                "ID",
                row.publisher_did,
                ucd="meta.ref.ivoid",
                description="Publisher DID of the spectrum to find neighbours of (fixed)",
            ),
            Param(
                "k",
                "10",
                datatype="int",
                ucd="meta.number",
                minimum="1",
                maximum=str(MAX_K),
                description="How many neighbours to return",
            ),
            Param(
                "model",
                "",
                ucd="meta.id",
                options=models,
                description="Embedding model whose latent space is searched "
                "[default: the best applied one]",
            ),
        ),
        description="Spectra most similar to this one: nearest neighbours in the latent space "
        "of an embedding model (cosine distance), as a VOTable",
    )
    yield Link(
        "#auxiliary",
        service=service,
        description="Similar spectra (nearest neighbours in an embedding model's latent space)",
        content_type="application/x-votable+xml",
        local_semantics="similar-spectra",
    )
