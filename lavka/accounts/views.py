from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from lavka.accounts import ratelimit


def client_address(request) -> str:
    return request.META.get("REMOTE_ADDR", "")


class ThrottledAuthenticationForm(AuthenticationForm):
    def clean(self):
        username = self.data.get("username", "")[:150]
        address = client_address(self.request) if self.request else ""
        if ratelimit.is_locked(username, address):
            raise ValidationError(_("Too many failed attempts. Try again in a few minutes."), code="locked")
        try:
            cleaned = super().clean()
        except ValidationError:
            ratelimit.record_failure(username, address)
            raise
        ratelimit.reset(username, address)
        return cleaned


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = ThrottledAuthenticationForm
    redirect_authenticated_user = True

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if any(e.code == "locked" for e in form.errors.as_data().get("__all__", [])):
            response.status_code = 429
        return response


class LogoutView(auth_views.LogoutView):
    pass
