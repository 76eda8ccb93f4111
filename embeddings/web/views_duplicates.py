"""The staff page that reviews duplicate groups: each group side by side with what differs, the
suggested best marked, and the decisions ("keep this one", "not duplicates") posted back here.
Thin: parse, call embeddings.duplicates.review, render or redirect."""
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from embeddings.duplicates import review
from embeddings.models import Image

TIERS = ("same", "similar", "exact")
SHOWN = 50  # groups on one page: the largest, which matter most


def _ids(values) -> list[int]:
    return [int(v) for v in values if str(v).isdigit() and 0 < int(v) < 2**63]


@staff_member_required
@require_http_methods(["GET", "POST"])
def duplicates_page(request):
    tier = request.GET.get("tier") if request.GET.get("tier") in TIERS else "same"
    error = None
    if request.method == "POST":
        try:
            if request.POST.get("action") == "keep":
                done = review.keep((_ids([request.POST.get("keep", "")]) or [0])[0], _ids(request.POST.getlist("drop")))
                messages.success(request, f"Kept #{done['kept']}; deleted {len(done['deleted'])} upload(s), "
                                          f"hid {len(done['hidden'])} library image(s).")
            else:
                review.not_duplicates(_ids(request.POST.getlist("ids")))
                messages.success(request, "Remembered: not duplicates.")
            return redirect(f"{request.path}?tier={tier}")
        except review.ResolveError as exc:
            error = str(exc)
    groups = review.groups(tier)
    rows = Image.objects.select_related("library").in_bulk([i for g in groups[:SHOWN] for i in g["images"]])
    shown = [{"tier": g["tier"], "best": g["best"], "paths": g.get("paths", []),
              "images": [rows[i] for i in g["images"] if i in rows]} for g in groups[:SHOWN]]
    return render(request, "duplicates.html", {"tier": tier, "tiers": TIERS, "groups": shown, "total": len(groups),
                                               "error": error, "hidden": review.hidden()})
