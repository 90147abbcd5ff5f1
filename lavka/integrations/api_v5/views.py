"""The one view behind `/api/`: parameters, key, rate limit, scope, idempotency, envelope.

Every answer is JSON in the retailCRM envelope, including unknown methods and unexpected failures,
because the clients cannot read an HTML page (§1.9).
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, RequestDataTooBig, ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DataError, IntegrityError, transaction
from django.http import Http404, HttpRequest, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.views.decorators.csrf import csrf_exempt

from lavka.accounts.actions import find_api_key, touch_api_key
from lavka.accounts.models import ApiKey
from lavka.integrations.api_v5 import ratelimit
from lavka.integrations.api_v5.errors import AccessDenied, ApiError, InvalidParameters, NotFound, entity_error
from lavka.integrations.api_v5.params import ParameterError, find_nul, parse_pairs
from lavka.integrations.api_v5.request import ApiRequest
from lavka.integrations.api_v5.router import Endpoint, resolve
from lavka.integrations.models import IdempotentResponse

log = logging.getLogger(__name__)
IDEMPOTENCY_HEADER = "HTTP_IDEMPOTENCY_KEY"


class ApiJSONEncoder(DjangoJSONEncoder):
    def default(self, o: Any) -> Any:
        from decimal import Decimal

        if isinstance(o, Decimal):
            return float(o)
        return super().default(o)


def envelope(status: int, body: dict[str, Any]) -> JsonResponse:
    return JsonResponse(
        body, status=status, encoder=ApiJSONEncoder, json_dumps_params={"ensure_ascii": False}
    )


def _pairs(query: Any) -> list[tuple[str, str]]:
    return [(name, value) for name, values in query.lists() for value in values]


def _params(request: HttpRequest) -> dict[str, Any]:
    params = parse_pairs(_pairs(request.GET))
    content_type = request.META.get("CONTENT_TYPE", "")
    if request.method == "POST" and content_type.startswith("application/json"):
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            raise ApiError("Errors in the input parameters", 400, {"body": "Invalid JSON."}) from None
        if not isinstance(body, dict):
            raise ApiError("Errors in the input parameters", 400, {"body": "A JSON object is expected."})
        params.update(body)
    elif request.method == "POST":
        params.update(parse_pairs(_pairs(request.POST)))
    nul = find_nul(params, "")
    if nul:
        raise InvalidParameters(nul, "This value contains a NUL character.")
    return params


def _authenticate(request: HttpRequest, params: dict[str, Any]) -> ApiKey:
    raw = request.META.get("HTTP_X_API_KEY") or params.get("apiKey")
    if not raw:
        raise ApiError('"apiKey" is missing.', 403)
    key = find_api_key(str(raw)) if isinstance(raw, str) else None
    if key is None:
        raise ApiError('Wrong "apiKey" value.', 403)
    return key


def _call(endpoint: Endpoint, req: ApiRequest, kwargs: dict[str, str]) -> tuple[int, dict[str, Any]]:
    result = endpoint.handler(req, **kwargs)
    status, payload = result if isinstance(result, tuple) else (200, result)
    return status, {"success": status < 400, **(payload or {})}


def _idempotent(
    request: HttpRequest, endpoint: Endpoint, req: ApiRequest, kwargs: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    """Same key + same request → the stored answer; same key + another request → 400.

    The claim row and the request's own writes commit together: a concurrent retry waits on the
    unique index and then reads the answer; a crash leaves neither.
    """
    idem_key = request.META[IDEMPOTENCY_HEADER][:255]
    digest = hashlib.sha256(
        json.dumps([request.path, req.params], sort_keys=True, default=str).encode()
    ).hexdigest()
    try:
        with transaction.atomic():
            claim = IdempotentResponse.objects.create(
                api_key=req.key, key=idem_key, request_hash=digest, status=0, body={}
            )
            status, body = _call(endpoint, req, kwargs)
            if status >= 400 and status != 460:
                raise _Undo(status, body)
            claim.status, claim.body = status, json.loads(json.dumps(body, cls=ApiJSONEncoder))
            claim.save(update_fields=["status", "body"])
            return status, body
    except _Undo as undo:
        return undo.status, undo.body
    except IntegrityError:
        stored = IdempotentResponse.objects.filter(api_key=req.key, key=idem_key).first()
        if stored is None:
            raise
    if stored.request_hash != digest:
        raise ApiError("Idempotency-Key was already used for a different request", 400)
    return stored.status, stored.body


class _Undo(Exception):
    """An error answer: roll back and do not remember it, so a corrected retry can run."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status, self.body = status, body


def _handle(request: HttpRequest, path: str) -> tuple[int, dict[str, Any]]:
    if "\x00" in path:
        raise InvalidParameters("path", "This value contains a NUL character.")
    endpoint, kwargs, other_method = resolve(request.method or "GET", path)
    if endpoint is None:
        if other_method:
            return 405, {"success": False, "errorMsg": "Method not allowed"}
        return 404, {"success": False, "errorMsg": "API method not found"}
    params = _params(request)
    key = _authenticate(request, params)
    if not ratelimit.allow(key, endpoint.telephony):
        return 503, {"success": False, "errorMsg": "Rate limit exceeded"}
    if endpoint.scope and endpoint.scope not in key.scopes:
        raise AccessDenied()
    touch_api_key(key)
    req = ApiRequest(key=key, params=params, method=request.method or "GET", path=path, http=request)
    if request.method == "POST" and request.META.get(IDEMPOTENCY_HEADER):
        return _idempotent(request, endpoint, req, kwargs)
    return _call(endpoint, req, kwargs)


def _respond(request: HttpRequest, path: str) -> JsonResponse:
    try:
        status, body = _handle(request, path.rstrip("/"))
    except ApiError as exc:
        status, body = exc.status, exc.body()
    except ParameterError as exc:
        error = InvalidParameters(exc.name)
        status, body = error.status, error.body()
    except ValidationError as exc:
        error = entity_error(exc)
        status, body = error.status, error.body()
    except (ObjectDoesNotExist, Http404):
        status, body = 404, NotFound().body()
    except DataError:
        # A value the database refuses (out of range, bad encoding) that validation let through.
        log.warning("API v5 %s %s: the database refused a value", request.method, path, exc_info=True)
        status, body = 400, {"success": False, "errorMsg": "Errors in the input parameters"}
    except IntegrityError:
        log.warning("API v5 %s %s hit a constraint", request.method, path, exc_info=True)
        status, body = 400, {"success": False, "errorMsg": "Validation error"}
    except PermissionDenied:
        status, body = 403, AccessDenied().body()
    except (MultiPartParserError, RequestDataTooBig, UnicodeDecodeError):
        status, body = 400, {"success": False, "errorMsg": "Errors in the input parameters"}
    except Exception:
        log.exception("API v5 %s %s failed", request.method, path)
        status, body = 500, {"success": False, "errorMsg": "Internal server error"}
    return envelope(status, body)


@csrf_exempt
def v5(request: HttpRequest, path: str) -> JsonResponse:
    return _respond(request, path)


@csrf_exempt
def unversioned(request: HttpRequest, path: str) -> JsonResponse:
    return _respond(request, "/api/" + path)
