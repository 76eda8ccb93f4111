"""The JSON API's searches: by text (with filters, sort and cutoff), by image, and "more like this"."""
from ninja import File, Form, Query, Router
from ninja.files import UploadedFile

from embeddings.search import request as search_request
from embeddings.search import selectors
from embeddings.search.answer import answer
from embeddings.search.query import read_query
from embeddings.web.api_base import READ, check_rate, error_response, get_image, image_parts, read_upload, reads, results
from embeddings.web.schemas import MAX_Q, ResultsOut, SearchParams

router = Router()


@router.get("/search", response={200: ResultsOut, **reads(400, 422, 429)}, auth=READ, summary="Text search")
def search(request, params: Query[SearchParams]):
    check_rate(request)
    asked = search_request.parse(params.dict(), strict=True)
    got = answer(asked)
    return results(request, params.q, got.page, {"offset": asked.offset + asked.k}, got.interpreted)


@router.post("/search/image", response={200: ResultsOut, **reads(400, 413, 422, 429)}, auth=READ,
             summary="Search by image, optionally mixed with text", openapi_extra=image_parts("file"))
def search_image(request, file: File[UploadedFile], q: str = Form("", max_length=MAX_Q),
                 k: int = Form(20, ge=1, le=search_request.MAX_K)):
    check_rate(request)
    vector = selectors.query_vector(read_query(q) if q.strip() else None, read_upload(file))
    return results(request, q or None, selectors.search(vector, k=k))


@router.get("/images/{int:image_id}/similar", response={200: ResultsOut, **reads(404, 409, 422, 429)}, auth=READ,
            summary="More like this")
def similar(request, image_id: int, k: int = Query(20, ge=1, le=search_request.MAX_K),
            offset: int = Query(0, ge=0, le=search_request.MAX_OFFSET)):
    check_rate(request)
    get_image(image_id)
    page = selectors.similar(image_id, k=k, offset=offset)
    if page is None:
        return error_response(409, "not_indexed", f"image {image_id} has no embedding for the current model yet")
    return results(request, None, page, {"offset": offset + k})
