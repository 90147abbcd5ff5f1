"""API v5 users (§2.7): list, get, status; scopes and site access."""

import pytest

from lavka.accounts.models import User

pytestmark = pytest.mark.django_db


def test_get_maps_role_and_presence(shop, api):
    shop.alice.email, shop.alice.phone, shop.alice.last_name = "alice@example.com", "+79990000001", "Смирнова"
    shop.alice.save()
    result = api.get(f"users/{shop.alice.pk}")
    assert result.status == 200
    user = result["user"]
    assert user["id"] == shop.alice.pk and user["firstName"] == "Alice" and user["lastName"] == "Смирнова"
    assert user["email"] == "alice@example.com" and user["phone"] == "+79990000001"
    assert user["active"] is True and user["status"] == "free" and user["online"] is True
    assert user["isManager"] is True and user["isAdmin"] is False
    assert user["groups"][0]["code"] == "manager" and user["createdAt"]
    admin = api.get(f"users/{shop.admin.pk}")["user"]
    assert admin["isAdmin"] is True and admin["isManager"] is False
    assert api.get("users/999999").status == 404
    assert api.get("users/abc").status == 404


def test_list_filters(shop, api):
    def usernames(params):
        result = api.get("users", params)
        assert result.status == 200, result.body
        return {User.objects.get(pk=u["id"]).username for u in result["users"]}

    assert usernames({}) == {"admin", "sveta", "alice", "bob", "oleg", "otto"}
    assert usernames({"filter[isManager]": "1"}) == {"sveta", "alice", "bob", "otto"}
    assert usernames({"filter[isAdmin]": "True"}) == {"admin"}
    shop.bob.email = "Bob@Example.com"
    shop.bob.save()
    assert usernames({"filter[email]": "bob@example.com"}) == {"bob"}
    shop.operator.is_active = False
    shop.operator.save()
    assert "oleg" not in usernames({"filter[active]": "1"})
    assert usernames({"filter[groups][]": ["supervisor"]}) == {"sveta"}
    page = api.get("users", {"limit": 20})
    assert page["pagination"] == {"limit": 20, "totalCount": 6, "currentPage": 1, "totalPageCount": 1}
    assert api.get("users", {"filter[status]": "asleep"}).status == 400


def test_status_sets_presence(shop, api):
    result = api.post(f"users/{shop.alice.pk}/status", {"status": "dinner"})
    assert result.status == 200 and result.body == {"success": True}
    shop.alice.refresh_from_db()
    assert shop.alice.presence == User.Presence.ABSENT
    user = api.get(f"users/{shop.alice.pk}")["user"]
    assert user["status"] == "break" and user["online"] is False
    offline = api.get("users", {"filter[online]": "0"})["users"]
    assert [u["id"] for u in offline] == [shop.alice.pk]
    assert [u["id"] for u in api.get("users", {"filter[status]": "dinner"})["users"]] == [shop.alice.pk]

    api.post(f"users/{shop.alice.pk}/status", {"status": "busy"})
    shop.alice.refresh_from_db()
    assert shop.alice.presence == User.Presence.BUSY

    wrong = api.post(f"users/{shop.alice.pk}/status", {"status": "asleep"})
    assert wrong.status == 400 and wrong.body["errorMsg"] == "Errors in the input parameters"
    missing = api.post(f"users/{shop.alice.pk}/status", {})
    assert missing.status == 400 and missing.body["errorMsg"] == "Parameter 'status' is missing"
    shop.alice.refresh_from_db()
    assert shop.alice.presence == User.Presence.BUSY


def test_scopes(shop, make_api):
    reader = make_api(name="reader", scopes=["user_read"])
    assert reader.get(f"users/{shop.bob.pk}").status == 200
    assert reader.post(f"users/{shop.bob.pk}/status", {"status": "busy"}).status == 403
    assert make_api(name="none", scopes=["order_read"]).get("users").status == 403
    shop.bob.refresh_from_db()
    assert shop.bob.presence == User.Presence.WORKING


def test_site_limited_key_sees_its_sites_staff_and_admins(shop, make_api):
    limited = make_api(name="shop only", sites=["shop"])
    ids = {u["id"] for u in limited.get("users")["users"]}
    assert shop.admin.pk in ids and shop.alice.pk in ids and shop.outsider.pk not in ids
    assert limited.get(f"users/{shop.outsider.pk}").status == 403
    assert limited.post(f"users/{shop.outsider.pk}/status", {"status": "busy"}).status == 403


def test_user_groups_are_the_roles_users_carry(shop, api, make_api):
    result = api.get("user-groups", {"limit": 20, "page": 1})
    assert result.status == 200
    codes = [g["code"] for g in result["groups"]]
    assert codes == ["admin", "supervisor", "manager", "operator"]
    assert result["pagination"] == {"limit": 20, "totalCount": 4, "currentPage": 1, "totalPageCount": 1}
    managers = {g["code"] for g in result["groups"] if g["isManager"]}
    assert managers == {"supervisor", "manager"}
    # A user's `groups[].code` names one of them.
    assert api.get(f"users/{shop.alice.pk}")["user"]["groups"][0]["code"] in codes
    assert api.get("user-groups", {"page": 2})["groups"] == []
    assert make_api(name="none", scopes=["order_read"]).get("user-groups").status == 403
