"""The broken-chain banner inside the Django admin, where admins spend part of their day."""

from django.core.cache import cache

from corpus.services.audit_verify import ALERT_CACHE_KEY

ALERT = {"problem": "event #8 was removed", "bad_seq": 8, "checked_at": "2026-11-24 10:00"}


def test_the_admin_pages_show_the_banner_while_the_chain_is_broken(client, admin_user):
    cache.set(ALERT_CACHE_KEY, ALERT)
    client.force_login(admin_user)

    for url in ("/admin/", "/admin/corpus/dataset/", "/admin/auth/user/"):
        page = client.get(url).content.decode()
        assert "The audit trail is broken." in page, url
        assert "event #8 was removed" in page, url
        assert "Django administration" in page or "Synthgate" in page, url


def test_no_banner_in_the_admin_while_the_chain_is_whole(client, admin_user):
    client.force_login(admin_user)

    page = client.get("/admin/").content.decode()
    assert "audit trail is broken" not in page
    assert 'id="site-name"' in page
