from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.settings import api_settings

from flywheel import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.metrics, name="metrics"),
    path("login/", auth_views.LoginView.as_view(template_name="flywheel/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    # DRF's token view names its own parsers; ours refuse JSON nested too deep (flywheel.parsers).
    path(
        "api/v1/auth/token",
        ObtainAuthToken.as_view(parser_classes=api_settings.DEFAULT_PARSER_CLASSES),
        name="api-token",
    ),
    path("api/v1/", include("feedback.urls_api")),
    path("api/v1/", include("training.urls_api")),
    path("api/v1/", include("interop.urls_api")),
    path("api/v1/", include("workers.urls_api")),
    path("console/", include("console.urls")),
    path("", include("feedback.urls")),
]
