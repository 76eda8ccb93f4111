from django.contrib import admin
from django.urls import include, path

from embeddings.web import views, views_albums, views_duplicates
from embeddings.web.api import api

urlpatterns = [
    path("", views.search_page, name="search"),
    path("images/<int:pk>/", views.image_detail, name="image-detail"),
    path("images/<int:pk>/original", views.library_original, name="image-original"),
    path("status/", views.status_page, name="status"),
    path("albums/", views_albums.album_list, name="albums"),
    path("albums/<int:pk>/", views_albums.album_page, name="album"),
    path("albums/<int:pk>/edit", views_albums.album_action, name="album-action"),
    path("duplicates/", views_duplicates.duplicates_page, name="duplicates"),
    path("s/<str:token>/", views_albums.share_page, name="share"),
    path("s/<str:token>/thumbnails/<int:image_id>", views_albums.share_thumbnail, name="share-thumbnail"),
    path("s/<str:token>/originals/<int:image_id>", views_albums.share_original, name="share-original"),
    path("media/<path:path>", views.media, name="media"),
    path("api/", api.urls),
    path("admin/", admin.site.urls),
    path("django-rq/", include("django_rq.urls")),
]
