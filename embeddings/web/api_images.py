"""The JSON API's images: upload, facts, delete, and the search page's bulk actions."""
from ninja import Router, Status
from ninja.files import UploadedFile

from embeddings import services
from embeddings.models import Image
from embeddings.web.api_base import ERRORS, READ, UPLOAD_FILES, WRITE, error_response, get_image, image_parts, reads, writes
from embeddings.web.schemas import BulkIdsIn, BulkOut, ImageOut, UploadOut

router = Router()

# What a client can do next with an uploaded image (OpenAPI links: stateful clients and testers follow them).
UPLOADED_LINKS = {name: {"operationId": f"embeddings_api_{op}", "parameters": {"image_id": "$response.body#/images/0/id"}}
                  for name, op in (("GetImage", "image_detail"), ("SimilarImages", "similar"), ("DeleteImage", "image_delete"))}


@router.post("/images", response={201: UploadOut, **writes(400, 409, 413, 422)}, auth=WRITE, summary="Upload images",
             openapi_extra={**image_parts("files"), "responses": {"201": {"links": UPLOADED_LINKS}}})
def upload(request, files: list[UploadedFile] = UPLOAD_FILES):
    # Safe to answer again if the database connection dies under it (clipsearch.middleware.RetryReads):
    # images are known by their bytes, so what the first try stored comes back as a duplicate of itself.
    request.retry_safe = True
    for f in files:
        f.seek(0)  # a second try reads the files again
    report = services.add_images(((f.name, f.read, f.size) for f in files), request.user)
    if report.added:
        return Status(201, {
            "images": [{"id": o.image.pk, "status": o.image.status, "original_filename": o.image.original_filename}
                       for o in report.added],
            "duplicates": [{"original_filename": o.filename, "reason": o.reason, "existing_id": o.existing.pk}
                           for o in report.duplicates],
            "rejected": [{"original_filename": o.filename, "reason": o.reason} for o in report.rejected],
        })
    if report.duplicates:
        d = report.duplicates[0]
        return error_response(409, "duplicate", d.reason, existing_id=d.existing.pk)
    return error_response(400, "rejected", "; ".join(f"{o.filename}: {o.reason}" for o in report.rejected) or "no files")


@router.get("/images/{int:image_id}", response={200: ImageOut, **reads(404)}, auth=READ,
            summary="An image's facts and status")
def image_detail(request, image_id: int):
    return get_image(image_id)


@router.delete("/images/{int:image_id}", response={204: None, **writes(404)}, auth=WRITE, summary="Delete an image")
def image_delete(request, image_id: int):
    services.delete_images([get_image(image_id)])
    return Status(204, None)


# ---- bulk actions of the search page's selection (one request, one transaction) --------------
def _existing(ids):
    found = list(Image.objects.filter(pk__in=set(ids)))
    known = {im.pk for im in found}
    return found, sorted(known), sorted(set(ids) - known)


@router.post("/images/delete", response={200: BulkOut, **ERRORS}, auth=WRITE, summary="Delete many images")
def images_delete(request, body: BulkIdsIn):
    found, done, missing = _existing(body.ids)
    services.delete_images(found)
    return {"done": done, "missing": missing}


@router.post("/images/reencode", response={200: BulkOut, **ERRORS}, auth=WRITE, summary="Re-encode many images")
def images_reencode(request, body: BulkIdsIn):
    found, done, missing = _existing(body.ids)
    services.reencode_images(found)
    return {"done": done, "missing": missing}
