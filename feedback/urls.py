from django.urls import path

from feedback import views

urlpatterns = [
    path("", views.home, name="home"),
    path("projects/<int:project_id>/guidelines", views.guidelines, name="guidelines"),
    path("projects/<int:project_id>/compare", views.compare, name="compare"),
    path(
        "projects/<int:project_id>/compare/<int:assignment_id>/submit",
        views.compare_submit,
        name="compare-submit",
    ),
    path(
        "projects/<int:project_id>/compare/<int:assignment_id>/skip", views.compare_skip, name="compare-skip"
    ),
    path("projects/<int:project_id>/write", views.write, name="write"),
]
