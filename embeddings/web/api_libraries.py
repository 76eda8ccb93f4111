"""The JSON API's libraries: list them with their counts and last scan, and ask a worker to scan
one. Mounted at /api/libraries by embeddings.web.api; errors and auth are the API's own."""
from ninja import Router, Status
from ninja.errors import HttpError

from embeddings.library import libraries
from embeddings.queue import enqueue_scan
from embeddings.web.api_base import WRITE, error_response, writes
from embeddings.web.schemas_status import LibraryOut, ScanQueuedOut

router = Router(tags=["libraries"])


@router.get("", response={200: list[LibraryOut], **writes()}, auth=WRITE, summary="Libraries, their counts and last scan")
def library_list(request):
    return list(libraries.with_counts())


@router.post("/{int:library_id}/scan", response={202: ScanQueuedOut, **writes(404, 409)}, auth=WRITE,
             summary="Scan a library now")
def library_scan(request, library_id: int):
    library = libraries.with_counts().filter(pk=library_id).first() if 0 < library_id < 2**63 else None
    if library is None:
        raise HttpError(404, f"no library with id {library_id}")
    if not enqueue_scan(library.pk):
        return error_response(409, "not_queued", "the scan could not be queued (the queue is unreachable); try again")
    return Status(202, {"id": library.pk, "name": library.name, "queued": True})
