from django import forms
from django.contrib import admin, messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from embeddings import services
from embeddings.albums import albums
from embeddings.library import libraries
from embeddings.models import Album, AlbumImage, ApiToken, Image, Library, Share
from embeddings.queue import enqueue_scan


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    widget = MultipleFileInput

    def clean(self, data, initial=None):
        # Each file is judged by services.add_image, one by one: a bad one must not block the rest.
        files = [f for f in (data if isinstance(data, (list, tuple)) else [data]) if f is not None]
        if not files:
            raise forms.ValidationError("Choose at least one file.")
        return files


class UploadForm(forms.Form):
    files = MultipleFileField(label="Images", help_text="Choose or drop many files at once.",
                              widget=MultipleFileInput(attrs={"accept": "image/*", "multiple": True}))


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ("thumb", "id", "original_filename", "status", "failure_reason", "width", "height", "uploaded_at")
    list_filter = ("status", "format", "library", "uploaded_at")
    search_fields = ("original_filename", "sha256")
    readonly_fields = [f.name for f in Image._meta.fields]
    actions = ["reencode", "delete_with_index"]

    @admin.display(description="")
    def thumb(self, obj):
        return format_html('<img src="{}" alt="{}" style="height:64px;width:64px;object-fit:cover">',
                           obj.display_url, obj.original_filename)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # ours also removes the vectors from every index
        return actions

    @admin.action(description="Re-encode selected images", permissions=["change"])
    def reencode(self, request, queryset):
        n = services.reencode_images(queryset)
        self.message_user(request, f"{n} images queued for encoding.")

    @admin.action(description="Delete selected images (and their index entries)", permissions=["delete"])
    def delete_with_index(self, request, queryset):
        n = services.delete_images(queryset)
        self.message_user(request, f"{n} images deleted.")

    def delete_model(self, request, obj):
        services.delete_images([obj])

    def delete_queryset(self, request, queryset):
        services.delete_images(queryset)

    def add_view(self, request, form_url="", extra_context=None):
        """Many files at once: each is checked by content, duplicates link to the stored image."""
        form = UploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            report = services.add_images(((f.name, f.read, f.size) for f in form.cleaned_data["files"]), request.user)
            for dup in report.duplicates:
                url = reverse("admin:embeddings_image_change", args=[dup.existing.pk])
                messages.warning(request, format_html('{}: already stored as <a href="{}">#{}</a>',
                                                      dup.filename, url, dup.existing.pk))
            for bad in report.rejected:
                messages.error(request, f"{bad.filename}: rejected: {bad.reason}")
            if report.added:
                messages.success(request, f"{len(report.added)} images added; they are being encoded.")
            return redirect("admin:embeddings_image_changelist")
        context = {**self.admin_site.each_context(request), "form": form, "opts": self.model._meta,
                   "title": "Add images", "has_view_permission": True}
        return render(request, "admin/embeddings/image/upload.html", context)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("prefix", "name", "user", "created_at", "last_used_at")
    readonly_fields = ("prefix", "created_at", "last_used_at")
    fields = ("user", "name", "prefix", "created_at", "last_used_at")

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        token, key = ApiToken.issue(obj.user, obj.name)
        obj.pk, obj.prefix, obj.key_hash, obj.created_at = token.pk, token.prefix, token.key_hash, token.created_at
        messages.warning(request, f"New token (shown once, copy it now): {key}")


class LibraryForm(forms.ModelForm):
    class Meta:
        model = Library
        fields = ("name", "root")

    def clean(self):
        data = super().clean()
        if not self.instance.pk and data.get("root"):
            # The same checks as `library add`: a resolved folder, not the data folder, not taken.
            try:
                data["root"], data["name"] = libraries.check_new(data["root"], data.get("name"))
            except libraries.LibraryError as exc:
                raise forms.ValidationError(str(exc)) from None
        return data


@admin.register(Library)
class LibraryAdmin(admin.ModelAdmin):
    """Folders indexed in place: counts, last scan and why a scan was refused; "scan now"."""

    form = LibraryForm
    list_display = ("name", "root", "state", "message", "image_count", "indexed_count", "pending_count", "failed_count",
                    "last_scan_finished_at", "last_scan")
    readonly_fields = ("state", "message", "created_at", "last_scan_started_at", "last_scan_finished_at", "last_scan",
                       "skipped_files")
    actions = ["scan_now"]

    def get_queryset(self, request):
        return libraries.with_counts(super().get_queryset(request))

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields + (("root",) if obj else ())  # another root would be another library

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # ours also removes the vectors from every index
        return actions

    @admin.display(description="images", ordering="image_count")
    def image_count(self, obj):
        return obj.image_count

    @admin.display(description="indexed")
    def indexed_count(self, obj):
        return obj.indexed_count

    @admin.display(description="pending")
    def pending_count(self, obj):
        return obj.pending_count

    @admin.display(description="failed")
    def failed_count(self, obj):
        return obj.failed_count

    @admin.display(description="last scan found")
    def last_scan(self, obj):
        counts = (obj.last_scan_report or {}).get("counts") if isinstance(obj.last_scan_report, dict) else None
        return ", ".join(f"{k} {v}" for k, v in counts.items()) if counts else "-"

    @admin.display(description="skipped files (the first 1000)")
    def skipped_files(self, obj):
        report = obj.last_scan_report if isinstance(obj.last_scan_report, dict) else {}
        rows = report.get("skipped") or []
        if not rows:
            return "-"
        return format_html_join(mark_safe("<br>"), "{}: {}", ((p, r) for p, r in rows))

    @admin.action(description="Scan now")
    def scan_now(self, request, queryset):
        queued = [lib.name for lib in queryset if enqueue_scan(lib.pk)]
        if queued:
            self.message_user(request, f"Scan queued for {', '.join(queued)}; a worker runs it.")
        if len(queued) < len(queryset):
            self.message_user(request, "Some scans could not be queued (is Redis up?).", level=messages.ERROR)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change:
            enqueue_scan(obj.pk)
            messages.info(request, f"Scan of {obj.name} queued; a worker runs it.")

    def delete_model(self, request, obj):
        libraries.remove_library(obj)

    def delete_queryset(self, request, queryset):
        for library in queryset:
            libraries.remove_library(library)


class AlbumEntryInline(admin.TabularInline):
    model = AlbumImage
    raw_id_fields = ["image"]
    extra = 0


@admin.register(Album)
class AlbumAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "size", "order", "updated_at"]
    list_filter = ["kind"]
    search_fields = ["name"]
    raw_id_fields = ["cover"]
    readonly_fields = ["created_by", "created_at", "updated_at"]
    inlines = [AlbumEntryInline]

    @admin.display(description="images")
    def size(self, obj):
        return albums.count(obj)

    def get_inlines(self, request, obj):
        # A smart album's members come from its saved search ("query"), not from entries.
        return [] if obj is not None and obj.kind == Album.Kind.SMART else self.inlines


@admin.register(Share)
class ShareAdmin(admin.ModelAdmin):
    list_display = ["album", "created_at", "expires_at", "originals", "revoked_at"]
    list_filter = ["originals"]
    readonly_fields = ["album", "token_hash", "created_at"]
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False  # links are made on the album's page or by the API, which show the token once

    @admin.action(description="Revoke the selected links")
    def revoke(self, request, queryset):
        n = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"Revoked {n} link{'s' if n != 1 else ''}.")
