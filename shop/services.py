"""Catalogue and account services: each owns its transaction."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from shop.accounts import find_user_by_email, hash_password
from shop.database import begin_write
from shop.errors import Conflict, Forbidden, Invalid, NotFound
from shop.extensions import db
from shop.models import Cooperative, Product, Role, User, Variant


class EmailTaken(Conflict):
    code, message = "email_taken", "An account with this email already exists."


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
        raise Invalid(fields={"cooperative_id": ["A cooperative member needs a cooperative."]})
    begin_write()
    if cooperative_id is not None and db.session.get(Cooperative, cooperative_id) is None:
        raise Invalid(fields={"cooperative_id": ["No such cooperative."]})
    if find_user_by_email(email) is not None:
        db.session.rollback()
        raise EmailTaken(fields={"email": ["Already registered."]})
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
        raise EmailTaken(fields={"email": ["Already registered."]}) from None
    return user


def create_cooperative(*, name: str, region: str, description: str = "") -> Cooperative:
    begin_write()
    if db.session.scalar(select(Cooperative.id).where(Cooperative.name == name)):
        db.session.rollback()
        raise Conflict("A cooperative with this name exists.", fields={"name": ["Already used."]})
    cooperative = Cooperative(name=name.strip(), region=region.strip(), description=description)
    db.session.add(cooperative)
    db.session.commit()
    return cooperative


def list_products(*, cooperative_id: int | None = None, q: str | None = None) -> list[Product]:
    query = select(Product).where(Product.active.is_(True)).order_by(Product.id)
    if cooperative_id is not None:
        query = query.where(Product.cooperative_id == cooperative_id)
    if q:
        pattern = f"%{q.strip()}%"
        query = query.where(or_(Product.name.ilike(pattern), Product.description.ilike(pattern)))
    return list(db.session.scalars(query))


def get_product(product_id: int) -> Product:
    product = db.session.get(Product, product_id)
    if product is None:
        raise NotFound("No such product.")
    return product


def check_manages(user: User, cooperative_id: int) -> None:
    """Admins manage every cooperative, a coop member only their own."""
    from shop.accounts import can_manage_cooperative

    if not can_manage_cooperative(user, cooperative_id):
        raise Forbidden("You can only manage your own cooperative's products.")


def create_product(
    user: User, *, name: str, description: str, cooperative_id: int, variants: list[dict]
) -> Product:
    check_manages(user, cooperative_id)
    begin_write()
    if db.session.get(Cooperative, cooperative_id) is None:
        db.session.rollback()
        raise Invalid(fields={"cooperative_id": ["No such cooperative."]})
    product = Product(name=name.strip(), description=description, cooperative_id=cooperative_id)
    product.variants = [
        Variant(name=v["name"], price=v["price"], stock=v["stock"]) for v in variants
    ]
    db.session.add(product)
    db.session.commit()
    return product


def update_product(user: User, product_id: int, changes: dict) -> Product:
    begin_write()
    product = get_product(product_id)
    check_manages(user, product.cooperative_id)
    for key, value in changes.items():
        setattr(product, key, value)
    db.session.commit()
    return product


def add_variant(user: User, product_id: int, *, name: str, price: int, stock: int) -> Variant:
    begin_write()
    product = get_product(product_id)
    check_manages(user, product.cooperative_id)
    variant = Variant(product=product, name=name, price=price, stock=stock)
    db.session.add(variant)
    db.session.commit()
    return variant


def update_variant(user: User, variant_id: int, changes: dict) -> Variant:
    """Set a variant's name, price or stock (an absolute stock count set by its cooperative)."""
    begin_write()
    variant = db.session.get(Variant, variant_id)
    if variant is None:
        db.session.rollback()
        raise NotFound("No such variant.")
    check_manages(user, variant.product.cooperative_id)
    for key in ("name", "price", "stock"):
        if key in changes:
            setattr(variant, key, changes[key])
    db.session.commit()
    return variant
