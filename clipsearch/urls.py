from django.contrib import admin
from django.urls import include, path

from embeddings.web import views
from embeddings.web.api import api

urlpatterns = [
    path("", views.search_page, name="search"),
    path("images/<int:pk>/", views.image_detail, name="image-detail"),
    path("images/<int:pk>/original", views.library_original, name="image-original"),
    path("status/", views.status_page, name="status"),
    path("media/<path:path>", views.media, name="media"),
    path("api/", api.urls),
    path("admin/", admin.site.urls),
    path("django-rq/", include("django_rq.urls")),
]
