from django.conf import settings
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import translation

PUBLIC_PREFIXES = ("/accounts/login", "/static/", "/healthz", "/api/")


class UserLanguageMiddleware:
    """Each user works in their own language, whatever the browser says."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.language:
            translation.activate(user.language)
            request.LANGUAGE_CODE = user.language
        return self.get_response(request)


class LoginRequiredMiddleware:
    """Every page needs a login, except the few public ones."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.user.is_authenticated and not request.path.startswith(PUBLIC_PREFIXES):
            login = reverse(settings.LOGIN_URL)
            return redirect(f"{login}?next={request.get_full_path()}")
        return self.get_response(request)
