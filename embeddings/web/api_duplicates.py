"""The JSON API's duplicates: the groups of a tier, largest first, and a decision on one (keep one,
or "not duplicates"). Staff or a token, reads included: groups show what people hold twice."""
from ninja import Query, Router
from ninja.errors import HttpError

from embeddings.duplicates import review
from embeddings.web.api_base import WRITE, writes
from embeddings.web.schemas_duplicates import GroupOut, ResolveIn, ResolveOut

router = Router(tags=["duplicates"])


@router.get("", response={200: list[GroupOut], **writes(422)}, auth=WRITE, summary="Duplicate groups, largest first")
def duplicate_groups(request, tier: str = Query("same", pattern="^(same|similar)$")):
    return [{"tier": g["tier"], "best": g["best"], "images": g["images"]} for g in review.groups(tier)]


@router.post("/resolve", response={200: ResolveOut, **writes(400, 404, 422)}, auth=WRITE,
             summary="Keep one of a group (the others leave the app), or remember that images are not duplicates")
def duplicate_resolve(request, body: ResolveIn):
    try:
        if body.not_duplicates is not None:
            return review.not_duplicates(body.not_duplicates)
        return review.keep(body.keep, body.drop)
    except review.ResolveError as exc:
        raise HttpError(404 if str(exc).startswith("no image") else 422, str(exc)) from None
