"""API authentication. Kept apart from flywheel.api, which DRF's settings would import in a cycle."""

from __future__ import annotations

from django.db import connection
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from flywheel.db import prepared_cursor
from flywheel.models import User


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's token authentication in one plain SQL statement.

    Every programmatic request pays for it. DRF's version builds an ORM query with a join on
    each call, which cost more CPU than the next-task statement itself; this one reads the
    same row and refuses the same tokens (unknown key, inactive user) with the same errors.
    """

    _columns = [field.attname for field in User._meta.concrete_fields]
    _sql = (
        f"SELECT {', '.join('u.' + column for column in _columns)} FROM {Token._meta.db_table} t"  # noqa: S608
        f" JOIN {User._meta.db_table} u ON u.id = t.user_id WHERE t.key = %s"
    )

    def authenticate_credentials(self, key: str) -> tuple[User, str]:
        with prepared_cursor() as cursor:
            cursor.execute(self._sql, [key])
            row = cursor.fetchone()
        if row is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        user = User.from_db(connection.alias, self._columns, row)
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return user, key
