"""Catalogue and account services: each owns its transaction and sends news after commit."""

from __future__ import annotations

from typing import IO

from flask import current_app
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from shop import photos, signals
from shop.accounts import (
    can_manage_cooperative,
    find_user_by_email,
    hash_password,
    verify_password,
)
from shop.database import begin_write
from shop.errors import Conflict, Forbidden, Invalid, NotFound
from shop.extensions import db
from shop.i18n import N_
from shop.models import Cooperative, Product, Role, User, Variant

MAX_ID = 2**31 - 1


class EmailTaken(Conflict):
    code, message = "email_taken", N_("An account with this email already exists.")


class WrongPassword(Invalid):
    code, message = "wrong_password", N_("The current password is wrong.")


def _get(model: type, ident: int, message: str):
    """Load a row by id, 404 when absent (ids past the column range cannot exist)."""
    row = db.session.get(model, ident) if 0 < ident <= MAX_ID else None
    if row is None:
        db.session.rollback()
        raise NotFound(message)
    return row


# --- accounts -----------------------------------------------------------------------------------


def create_user(
    *,
    email: str,
    password: str,
    name: str,
    role: str = Role.BUYER,
    cooperative_id: int | None = None,
) -> User:
    """Create an account; a coop member must name an existing cooperative."""
    if role not in {r.value for r in Role}:
        raise Invalid(fields={"role": [f"Must be one of {', '.join(r.value for r in Role)}."]})
    if role == Role.COOP and cooperative_id is None:
        raise Invalid(fields={"cooperative_id": [N_("A cooperative member needs a cooperative.")]})
    if not name.strip():
        raise Invalid(fields={"name": [N_("Must not be blank.")]})
    begin_write()
    if cooperative_id is not None and db.session.get(Cooperative, cooperative_id) is None:
        db.session.rollback()
        raise Invalid(fields={"cooperative_id": [N_("No such cooperative.")]})
    if find_user_by_email(email) is not None:
        db.session.rollback()
        raise EmailTaken(fields={"email": [N_("Already registered.")]})
    user = User(
        email=email.strip().lower(),
        password_hash=hash_password(password),
        name=name.strip(),
        role=str(role),
        cooperative_id=cooperative_id if role == Role.COOP else None,
    )
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise EmailTaken(fields={"email": [N_("Already registered.")]}) from None
    return user


def list_users(*, role: str | None = None) -> list[User]:
    query = select(User).order_by(User.id)
    if role:
        query = query.where(User.role == role)
    return list(db.session.scalars(query))


def update_user(actor: User, user_id: int, changes: dict) -> User:
    """An admin renames or (de)activates an account; never their own deactivation."""
    begin_write()
    user = _get(User, user_id, N_("No such user."))
    if changes.get("active") is False and user.id == actor.id:
        db.session.rollback()
        raise Conflict(
            N_("You cannot deactivate your own account."), fields={"active": [N_("Own.")]}
        )
    for key in ("active", "name"):
        if key in changes:
            setattr(user, key, changes[key].strip() if key == "name" else changes[key])
    if changes.get("active") is False:
        # In the same UPDATE: reactivating the account later does not revive old cookies.
        user.session_version = User.session_version + 1
    db.session.commit()
    return user


def end_sessions(user_id: int) -> None:
    """Log the user out everywhere: every cookie issued before, copied ones too, is refused."""
    begin_write()
    db.session.execute(
        update(User)
        .where(User.id == user_id)
        .values(session_version=User.session_version + 1)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def change_password(user: User, *, current_password: str, new_password: str) -> User:
    """Set a new password once the current one is proven; every session of the user ends (the
    caller logs the current one in again, with the new session version)."""
    if not verify_password(user, current_password):
        raise WrongPassword(fields={"current_password": [N_("Wrong password.")]})
    password_hash = hash_password(new_password)  # slow: before the write transaction
    begin_write()
    db.session.execute(
        update(User)
        .where(User.id == user.id)
        .values(password_hash=password_hash, session_version=User.session_version + 1)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()  # expires `user`: its next read has the new version
    return user


# --- cooperatives -------------------------------------------------------------------------------


def list_cooperatives() -> list[Cooperative]:
    return list(db.session.scalars(select(Cooperative).order_by(Cooperative.id)))


def get_cooperative(cooperative_id: int) -> Cooperative:
    return _get(Cooperative, cooperative_id, N_("No such cooperative."))


def _name_taken(name: str, *, other_than: int | None = None) -> bool:
    query = select(Cooperative.id).where(Cooperative.name == name)
    if other_than is not None:
        query = query.where(Cooperative.id != other_than)
    return db.session.scalar(query) is not None


def create_cooperative(
    *, name: str, region: str, description: str = "", live_price_floor_percent: int = 50
) -> Cooperative:
    begin_write()
    if _name_taken(name.strip()):
        db.session.rollback()
        raise Conflict(
            N_("A cooperative with this name exists."), fields={"name": [N_("Already used.")]}
        )
    cooperative = Cooperative(
        name=name.strip(),
        region=region.strip(),
        description=description,
        live_price_floor_percent=live_price_floor_percent,
    )
    db.session.add(cooperative)
    db.session.commit()
    return cooperative


# What a cooperative's own members may change about it; the rest is the admin's.
MEMBER_EDITABLE = frozenset({"live_price_floor_percent"})


def update_cooperative(actor: User, cooperative_id: int, changes: dict) -> Cooperative:
    """Admins edit any cooperative; a coop member sets only its own live price floor."""
    if actor.role != Role.ADMIN and (
        not can_manage_cooperative(actor, cooperative_id) or set(changes) - MEMBER_EDITABLE
    ):
        raise Forbidden(N_("Only an admin can change this cooperative."))
    begin_write()
    cooperative = db.session.scalar(
        select(Cooperative)
        .where(Cooperative.id == cooperative_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if cooperative is None:
        db.session.rollback()
        raise NotFound(N_("No such cooperative."))
    if "name" in changes and _name_taken(changes["name"].strip(), other_than=cooperative.id):
        db.session.rollback()
        raise Conflict(
            N_("A cooperative with this name exists."), fields={"name": [N_("Already used.")]}
        )
    for key in ("name", "region", "description"):
        if key in changes:
            setattr(cooperative, key, changes[key].strip())
    if "live_price_floor_percent" in changes:
        cooperative.live_price_floor_percent = changes["live_price_floor_percent"]
    db.session.commit()
    return cooperative


# --- products and variants ----------------------------------------------------------------------


def _like(text: str) -> str:
    escaped = text.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def list_products(
    *, cooperative_id: int | None = None, q: str | None = None, include_hidden: bool = False
) -> list[Product]:
    """Products for sale (or all of them for a manager), newest catalogue order by id."""
    query = (
        select(Product)
        .options(selectinload(Product.variants), selectinload(Product.cooperative))
        .order_by(Product.id)
    )
    if not include_hidden:
        query = query.where(Product.active.is_(True))
    if cooperative_id is not None:
        query = query.where(Product.cooperative_id == cooperative_id)
    if q and q.strip():
        pattern = _like(q)
        query = query.where(
            or_(
                Product.name.ilike(pattern, escape="\\"),
                Product.description.ilike(pattern, escape="\\"),
            )
        )
    return list(db.session.scalars(query))


def get_product(product_id: int, viewer: User | None = None) -> Product:
    """A product; a hidden one only for those who manage its cooperative (else 404)."""
    product = _get(Product, product_id, N_("No such product."))
    manager = viewer is not None and can_manage_cooperative(viewer, product.cooperative_id)
    if not product.active and not manager:
        raise NotFound(N_("No such product."))
    return product


def check_manages(user: User, cooperative_id: int) -> None:
    """Admins manage every cooperative, a coop member only their own."""
    if not can_manage_cooperative(user, cooperative_id):
        db.session.rollback()
        raise Forbidden(N_("You can only manage your own cooperative's products."))


def create_product(
    user: User, *, name: str, description: str, cooperative_id: int, variants: list[dict]
) -> Product:
    check_manages(user, cooperative_id)
    begin_write()
    if db.session.get(Cooperative, cooperative_id) is None:
        db.session.rollback()
        raise Invalid(fields={"cooperative_id": [N_("No such cooperative.")]})
    product = Product(name=name.strip(), description=description, cooperative_id=cooperative_id)
    product.variants = [
        Variant(name=v["name"].strip(), price=v["price"], stock=v["stock"]) for v in variants
    ]
    db.session.add(product)
    db.session.commit()
    return product


def update_product(user: User, product_id: int, changes: dict) -> Product:
    begin_write()
    product = _get(Product, product_id, N_("No such product."))
    check_manages(user, product.cooperative_id)
    for key in ("name", "description", "active"):
        if key in changes:
            value = changes[key]
            setattr(product, key, value.strip() if key == "name" else value)
    db.session.commit()
    return product


def set_product_photo(user: User, product_id: int, upload: IO[bytes] | None) -> Product:
    """Replace a product's photo with a checked, re-encoded copy of the upload."""
    product = _get(Product, product_id, N_("No such product."))
    check_manages(user, product.cooperative_id)
    name = photos.store_upload(upload, prefix=f"product-{product.id}")
    begin_write()
    product = _get(Product, product_id, N_("No such product."))
    old, product.photo = product.photo, name
    try:
        db.session.commit()
    except Exception:
        db.session.rollback()
        photos.remove(name)
        raise
    photos.remove(old)
    return product


def _check_variant_name(product: Product, name: str, *, other_than: int | None = None) -> None:
    if any(v.name == name and v.id != other_than for v in product.variants):
        db.session.rollback()
        raise Conflict(
            N_("This product already has a variant of that name."),
            fields={"name": [N_("Already used.")]},
        )


def add_variant(user: User, product_id: int, *, name: str, price: int, stock: int) -> Variant:
    begin_write()
    product = _get(Product, product_id, N_("No such product."))
    check_manages(user, product.cooperative_id)
    _check_variant_name(product, name.strip())
    variant = Variant(product=product, name=name.strip(), price=price, stock=stock)
    db.session.add(variant)
    db.session.commit()
    signals.stock_changed.send(current_app._get_current_object(), variant_ids=[variant.id])
    return variant


def update_variant(user: User, variant_id: int, changes: dict) -> Variant:
    """Set a variant's name, price or stock (an absolute stock count set by its cooperative)."""
    begin_write()
    variant = _get(Variant, variant_id, N_("No such variant."))
    check_manages(user, variant.product.cooperative_id)
    if "name" in changes:
        _check_variant_name(variant.product, changes["name"].strip(), other_than=variant.id)
        variant.name = changes["name"].strip()
    for key in ("price", "stock"):
        if key in changes:
            setattr(variant, key, changes[key])
    db.session.commit()
    if "stock" in changes:
        signals.stock_changed.send(current_app._get_current_object(), variant_ids=[variant.id])
    return variant
