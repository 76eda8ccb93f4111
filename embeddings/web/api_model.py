"""The JSON API's model and state: status, model info, and the seed's encoding endpoints."""
from django.conf import settings
from ninja import File, Router
from ninja.errors import HttpError
from ninja.files import UploadedFile

from embeddings.clip.vectors import cosine
from embeddings.files import image_policy
from embeddings.search import selectors
from embeddings.web.api_base import READ, image_parts, read_upload, reads
from embeddings.web.schemas import EmbeddingOut, SimilarityIn, SimilarityOut, TextIn
from embeddings.web.schemas_status import ModelOut, StatusOut

router = Router()


@router.get("/status", response={200: StatusOut, **reads()}, auth=READ, summary="Counts, queue, model and index")
def status(request):
    return selectors.status()


@router.get("/model", response={200: ModelOut, **reads()}, auth=READ, summary="The loaded model (get_model_info)")
def model(request):
    return selectors.model_info()


@router.post("/encode/text", response={200: EmbeddingOut, **reads(400, 413, 422)}, auth=READ, summary="Encode text")
def encode_text(request, body: TextIn):
    if not body.text.strip():
        raise HttpError(400, "text is empty")
    v = selectors.configured_model().embed_texts([body.text])[0]
    return {"embedding": v.tolist(), "dim": len(v), "model": settings.MODEL_KEY}


@router.post("/encode/image", response={200: EmbeddingOut, **reads(400, 413, 422)}, auth=READ, summary="Encode an image",
             openapi_extra=image_parts("file"))
def encode_image(request, file: File[UploadedFile]):
    service = selectors.configured_model()
    try:
        picture = image_policy.decode(read_upload(file), draft_target=service.load().preprocessor.target)
        v = service.embed_images([picture])[0]
    except ValueError as exc:  # RejectedImage is one
        raise HttpError(400, f"not a readable image: {image_policy.readable(exc)}") from None
    return {"embedding": v.tolist(), "dim": len(v), "model": settings.MODEL_KEY}


@router.post("/similarity", response={200: SimilarityOut, **reads(400, 413, 422)}, auth=READ,
             summary="Cosine similarity of two embeddings")
def similarity(request, body: SimilarityIn):
    try:
        return {"similarity": cosine(body.text_embedding, body.image_embedding)}
    except ValueError as exc:  # the rules a JSON schema cannot state: equal lengths, finite numbers
        raise HttpError(400, str(exc)) from None
