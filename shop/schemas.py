"""marshmallow schemas for accounts, cooperatives, products and variants."""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, validate

MONEY = validate.Range(min=0, max=100_000_000)  # up to ¥1,000,000.00 a unit
STOCK = validate.Range(min=0, max=10_000_000)


class BaseSchema(Schema):
    class Meta:
        unknown = EXCLUDE
        ordered = True


class UserSchema(BaseSchema):
    id = fields.Int(dump_only=True)
    email = fields.Email(dump_only=True)
    name = fields.Str(dump_only=True)
    role = fields.Str(dump_only=True)
    cooperative_id = fields.Int(dump_only=True, allow_none=True)


class RegisterSchema(BaseSchema):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    password = fields.Str(required=True, load_only=True, validate=validate.Length(min=8, max=128))
    name = fields.Str(required=True, validate=validate.Length(min=1, max=80))


class LoginSchema(BaseSchema):
    email = fields.Str(required=True, validate=validate.Length(min=1, max=254))
    password = fields.Str(required=True, load_only=True, validate=validate.Length(min=1, max=128))


class CsrfSchema(BaseSchema):
    csrf_token = fields.Str()


class CooperativeSchema(BaseSchema):
    id = fields.Int(dump_only=True)
    name = fields.Str(required=True, validate=validate.Length(min=1, max=120))
    region = fields.Str(required=True, validate=validate.Length(min=1, max=120))
    description = fields.Str(load_default="", validate=validate.Length(max=5000))


class VariantSchema(BaseSchema):
    id = fields.Int(dump_only=True)
    name = fields.Str(required=True, validate=validate.Length(min=1, max=120))
    price = fields.Int(required=True, strict=True, validate=MONEY)
    stock = fields.Int(required=True, strict=True, validate=STOCK)


class VariantUpdateSchema(BaseSchema):
    name = fields.Str(validate=validate.Length(min=1, max=120))
    price = fields.Int(strict=True, validate=MONEY)
    stock = fields.Int(strict=True, validate=STOCK)


class ProductSchema(BaseSchema):
    id = fields.Int(dump_only=True)
    name = fields.Str(required=True, validate=validate.Length(min=1, max=120))
    description = fields.Str(load_default="", validate=validate.Length(max=5000))
    cooperative_id = fields.Int(required=True, strict=True)
    photo_url = fields.Method("_photo_url", dump_only=True)
    variants = fields.List(
        fields.Nested(VariantSchema), required=True, validate=validate.Length(min=1, max=50)
    )

    def _photo_url(self, product) -> str | None:
        from flask import url_for

        return url_for("shop_pages.photo", filename=product.photo) if product.photo else None


class ProductUpdateSchema(BaseSchema):
    name = fields.Str(validate=validate.Length(min=1, max=120))
    description = fields.Str(validate=validate.Length(max=5000))
    active = fields.Bool()


class ProductQuerySchema(BaseSchema):
    cooperative_id = fields.Int()
    q = fields.Str(validate=validate.Length(max=100))


class ProductListSchema(BaseSchema):
    items = fields.List(fields.Nested(ProductSchema))


class CooperativeListSchema(BaseSchema):
    items = fields.List(fields.Nested(CooperativeSchema))
