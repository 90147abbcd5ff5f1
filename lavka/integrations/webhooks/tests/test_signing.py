"""`verify_signature`, the check docs/events.md gives to receivers: it accepts exactly what Lavka signed."""

import hashlib
import hmac
import time

from lavka.integrations.webhooks.signing import sign, verify_signature

SECRET = "whsec_test"
BODY = '{"id":"d1","event":"orders.created","payload":{"order_id":1,"name":"Чай"}}'.encode()


def test_the_signature_is_the_documented_hmac() -> None:
    expected = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, 1700000000, BODY) == f"sha256={expected}"


def test_a_genuine_request_is_accepted() -> None:
    now = int(time.time())
    header = sign(SECRET, now, BODY)
    assert verify_signature(SECRET, str(now), BODY, header)
    assert verify_signature(SECRET, now, BODY.decode(), header)  # str body, int timestamp


def test_tampering_is_rejected() -> None:
    now = int(time.time())
    header = sign(SECRET, now, BODY)
    tampered = BODY.replace(b'"order_id":1', b'"order_id":2')
    assert not verify_signature(SECRET, now, tampered, header)
    assert not verify_signature(SECRET, now, BODY + b" ", header)
    assert not verify_signature("whsec_other", now, BODY, header)
    assert not verify_signature(SECRET, now + 1, BODY, header)  # the timestamp is signed too
    assert not verify_signature(SECRET, now, BODY, header.replace("sha256=", "sha1="))
    assert not verify_signature(SECRET, now, BODY, header[:-1] + ("0" if header[-1] != "0" else "1"))
    assert not verify_signature(SECRET, now, BODY, "")
    assert not verify_signature(SECRET, "not-a-number", BODY, header)
    assert not verify_signature(SECRET, now, BODY, "sha256=ä")


def test_old_or_future_timestamps_are_rejected_unless_the_check_is_off() -> None:
    then = int(time.time()) - 3600
    header = sign(SECRET, then, BODY)
    assert not verify_signature(SECRET, then, BODY, header)
    assert verify_signature(SECRET, then, BODY, header, max_age_seconds=None)
    assert verify_signature(SECRET, then, BODY, header, max_age_seconds=7200)
    ahead = int(time.time()) + 3600
    assert not verify_signature(SECRET, ahead, BODY, sign(SECRET, ahead, BODY))
