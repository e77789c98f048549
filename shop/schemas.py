"""marshmallow schemas for accounts, cooperatives, products and variants."""

from __future__ import annotations

from flask import current_app, url_for
from flask_smorest.fields import Upload
from marshmallow import EXCLUDE, Schema, ValidationError, fields, pre_load, validate, validates

from shop.i18n import N_
from shop.models import Role
from shop.text import text_errors

MONEY = validate.Range(min=0, max=100_000_000)  # up to ¥1,000,000.00 a unit
MAX_STOCK = 10_000_000
STOCK = validate.Range(min=0, max=MAX_STOCK)
ID = validate.Range(min=1, max=2**31 - 1)  # larger ids cannot exist and would overflow a query
ROLES = [r.value for r in Role]


class BaseSchema(Schema):
    class Meta:
        unknown = EXCLUDE
        ordered = True

    @pre_load(pass_collection=True)
    def _refuse_unstorable_text(self, data, **_kw):
        """NUL, or text UTF-8 cannot encode (a lone surrogate), anywhere in the input (nested
        fields, list items, dict keys such as `live_prices`): refused, naming the field,
        before it can reach the database and poison every page that shows the row."""
        errors = text_errors(data)
        if errors:
            raise ValidationError(errors)
        return data


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ValidationError(N_("Must not be blank."))


def _currency(_obj) -> str:
    return current_app.config["CURRENCY"]


class UserSchema(BaseSchema):
    id = fields.Int(dump_only=True)
    email = fields.Email(dump_only=True)
    name = fields.Str(dump_only=True)
    role = fields.Str(dump_only=True)
    cooperative_id = fields.Int(dump_only=True, allow_none=True)


class AdminUserSchema(UserSchema):
    """What an admin sees of an account: also whether it may log in."""

    active = fields.Bool(dump_only=True)
    created_at = fields.DateTime(dump_only=True)


class RegisterSchema(BaseSchema):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    password = fields.Str(required=True, load_only=True, validate=validate.Length(min=8, max=128))
    name = fields.Str(required=True, validate=[validate.Length(min=1, max=80), _not_blank])


class UserCreateSchema(RegisterSchema):
    """An admin creates an account of any role; a coop member names its cooperative."""

    role = fields.Str(required=True, validate=validate.OneOf(ROLES))
    cooperative_id = fields.Int(strict=True, allow_none=True, load_default=None, validate=ID)


class UserUpdateSchema(BaseSchema):
    active = fields.Bool()
    name = fields.Str(validate=[validate.Length(min=1, max=80), _not_blank])


class UserQuerySchema(BaseSchema):
    role = fields.Str(validate=validate.OneOf(ROLES))


class UserListSchema(BaseSchema):
    items = fields.List(fields.Nested(AdminUserSchema))


class LoginSchema(BaseSchema):
    email = fields.Str(required=True, validate=validate.Length(min=1, max=254))
    password = fields.Str(required=True, load_only=True, validate=validate.Length(min=1, max=128))


class PasswordChangeSchema(BaseSchema):
    """POST /auth/password: the current password proves it is the owner; the new one follows
    the same rules as at registration."""

    current_password = fields.Str(
        required=True, load_only=True, validate=validate.Length(min=1, max=128)
    )
    new_password = fields.Str(
        required=True, load_only=True, validate=validate.Length(min=8, max=128)
    )


class CsrfSchema(BaseSchema):
    csrf_token = fields.Str()


FLOOR_PERCENT = validate.Range(min=0, max=100)
FLOOR_HELP = "No live price may be below this share (%) of a variant's regular price."


class CooperativeSchema(BaseSchema):
    id = fields.Int(dump_only=True)
    name = fields.Str(required=True, validate=[validate.Length(min=1, max=120), _not_blank])
    region = fields.Str(required=True, validate=[validate.Length(min=1, max=120), _not_blank])
    description = fields.Str(load_default="", validate=validate.Length(max=5000))
    live_price_floor_percent = fields.Int(
        strict=True, load_default=50, validate=FLOOR_PERCENT, metadata={"description": FLOOR_HELP}
    )


class CooperativeUpdateSchema(BaseSchema):
    """Admins change any field; a cooperative's own members only its live price floor."""

    name = fields.Str(validate=[validate.Length(min=1, max=120), _not_blank])
    region = fields.Str(validate=[validate.Length(min=1, max=120), _not_blank])
    description = fields.Str(validate=validate.Length(max=5000))
    live_price_floor_percent = fields.Int(
        strict=True, validate=FLOOR_PERCENT, metadata={"description": FLOOR_HELP}
    )


class VariantSchema(BaseSchema):
    id = fields.Int(dump_only=True)
    name = fields.Str(required=True, validate=[validate.Length(min=1, max=120), _not_blank])
    price = fields.Int(required=True, strict=True, validate=MONEY)
    stock = fields.Int(required=True, strict=True, validate=STOCK)
    currency = fields.Function(_currency, dump_only=True)


class VariantUpdateSchema(BaseSchema):
    name = fields.Str(validate=[validate.Length(min=1, max=120), _not_blank])
    price = fields.Int(strict=True, validate=MONEY)
    stock = fields.Int(strict=True, validate=STOCK)


class ProductSchema(BaseSchema):
    id = fields.Int(dump_only=True)
    name = fields.Str(required=True, validate=[validate.Length(min=1, max=120), _not_blank])
    description = fields.Str(load_default="", validate=validate.Length(max=5000))
    cooperative_id = fields.Int(required=True, strict=True, validate=ID)
    active = fields.Bool(dump_only=True)
    photo_url = fields.Method("_photo_url", dump_only=True)
    variants = fields.List(
        fields.Nested(VariantSchema), required=True, validate=validate.Length(min=1, max=50)
    )

    def _photo_url(self, product) -> str | None:
        return url_for("shop_pages.photo", filename=product.photo) if product.photo else None

    @validates("variants")
    def _distinct_names(self, variants: list[dict], **_kw) -> None:
        names = [v["name"].strip() for v in variants if isinstance(v.get("name"), str)]
        if len(set(names)) != len(names):
            raise ValidationError(N_("Variant names must differ."))


class PhotoUploadSchema(BaseSchema):
    """multipart/form-data with one file field, `photo`: JPEG, PNG or WebP."""

    photo = Upload(required=True)


class ProductUpdateSchema(BaseSchema):
    name = fields.Str(validate=[validate.Length(min=1, max=120), _not_blank])
    description = fields.Str(validate=validate.Length(max=5000))
    active = fields.Bool()


class ProductQuerySchema(BaseSchema):
    cooperative_id = fields.Int(validate=ID)
    q = fields.Str(validate=validate.Length(max=100))


class ProductListSchema(BaseSchema):
    items = fields.List(fields.Nested(ProductSchema))


class CooperativeListSchema(BaseSchema):
    items = fields.List(fields.Nested(CooperativeSchema))
