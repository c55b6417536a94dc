from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from corpus.health import healthz
from corpus.views.auth import AuditedLoginView, AuditedLogoutView, admin_login_redirect

urlpatterns = [
    path("", include("corpus.ui_urls")),
    path("", include("dashboard.urls")),
    path("healthz", healthz, name="healthz"),
    # Audited: every login, failed login and logout appends an audit event.
    path("accounts/login/", AuditedLoginView.as_view(), name="login"),
    path("accounts/logout/", AuditedLogoutView.as_view(), name="logout"),
    path("admin/login/", admin_login_redirect),
    path("admin/", admin.site.urls),
    path("review/", include("review.urls")),
    path("api/v1/", include("corpus.urls")),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/v1/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
]

# 503 with Retry-After while the database is away (a restart, a failover), else Django's 500.
handler500 = "corpus.middleware.server_error"
