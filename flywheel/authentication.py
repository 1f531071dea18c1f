"""API authentication. Kept apart from flywheel.api, which DRF's settings would import in a cycle."""

from __future__ import annotations

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from flywheel.db import prepared_cursor
from flywheel.models import User
from flywheel.postgres import base as postgres


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's token authentication in one plain SQL statement.

    Every programmatic request pays for it. DRF's version builds an ORM query with a join on
    each call, which cost more CPU than the next-task statement itself; this one reads the
    same row and refuses the same tokens (unknown key, inactive user) with the same errors.

    On PostgreSQL the row is kept per connection until a user or token changes
    (flywheel.postgres), which saves the round trip on every request after a connection's
    first. Each request still gets a User of its own, built from the row.
    """

    _columns = [field.attname for field in User._meta.concrete_fields]
    _sql = (
        f"SELECT {', '.join('u.' + column for column in _columns)} FROM {Token._meta.db_table} t"  # noqa: S608
        f" JOIN {User._meta.db_table} u ON u.id = t.user_id WHERE t.key = %s"
    )

    def authenticate_credentials(self, key: str) -> tuple[User, str]:
        db = connections[DEFAULT_DB_ALIAS]
        cache = db if isinstance(db, postgres.DatabaseWrapper) else None
        row = None
        if cache is not None and (rows := cache.auth_cache()) is not None:
            row = rows.get(key)
        if row is None:
            changes = cache.auth_cache_start() if cache is not None else None
            with prepared_cursor() as cursor:
                cursor.execute(self._sql, [key])
                row = cursor.fetchone()
            if cache is not None and row is not None:
                cache.auth_cache_keep(key, row, changes)
        if row is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        user = User.from_db(connection.alias, self._columns, row)
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return user, key
