"""The benchmark's own data, made through the app's services: a host with a live session, a
flash-sale product with S units, a product with plentiful stock, and M buyers."""

from __future__ import annotations

from dataclasses import dataclass, field

PASSWORD = "bench-password-1"
PLENTIFUL = 10_000_000
BENCH_HASH_METHOD = "scrypt:1024:8:1"


@dataclass
class BenchData:
    session_id: int
    host_email: str
    flash_product_id: int
    flash_variant_id: int
    bulk_product_id: int
    bulk_variant_id: int
    buyer_emails: list[str] = field(default_factory=list)
    password: str = PASSWORD


def seed(database_url: str, *, buyers: int, stock: int) -> BenchData:
    """Create everything the run needs in an empty database."""
    from sqlalchemy import select

    from live import services as live
    from shop import create_app
    from shop.extensions import db
    from shop.models import Role, User
    from shop.services import create_cooperative, create_product, create_user

    # Cheap scrypt parameters for the bench's own accounts only: logging 300 buyers in is set-up,
    # not what is measured (production parameters cost ~0.4 s of CPU per login).
    app = create_app(
        "config.Config",
        SQLALCHEMY_DATABASE_URI=database_url,
        RUN_BACKGROUND_TASKS=False,
        PASSWORD_HASH_METHOD=BENCH_HASH_METHOD,
    )
    with app.app_context():
        admin = create_user(
            email="admin@bench.test", password=PASSWORD, name="Bench admin", role=Role.ADMIN
        )
        host = create_user(
            email="host@bench.test", password=PASSWORD, name="Bench host", role=Role.HOST
        )
        coop_id = create_cooperative(name="Bench cooperative", region="新疆 尉犁县").id
        admin = db.session.get(User, admin.id)
        flash = create_product(
            admin,
            name="罗布羊 flash",
            description="",
            cooperative_id=coop_id,
            variants=[{"name": "2 kg leg", "price": 8800, "stock": stock}],
        )
        flash_ids = (flash.id, flash.variants[0].id)
        admin = db.session.get(User, admin.id)
        bulk = create_product(
            admin,
            name="香梨 bulk",
            description="",
            cooperative_id=coop_id,
            variants=[{"name": "5 kg box", "price": 6600, "stock": PLENTIFUL}],
        )
        bulk_ids = (bulk.id, bulk.variants[0].id)
        emails = _buyers(buyers, create_user, db, User)
        host = db.session.scalar(select(User).where(User.email == "host@bench.test"))
        session = live.create_session(host, title="Bench flash sale")
        session_id = session.id
        host = db.session.get(User, host.id)
        live.start_session(host, session_id)
        db.session.remove()
        db.engine.dispose()
    return BenchData(
        session_id=session_id,
        host_email="host@bench.test",
        flash_product_id=flash_ids[0],
        flash_variant_id=flash_ids[1],
        bulk_product_id=bulk_ids[0],
        bulk_variant_id=bulk_ids[1],
        buyer_emails=emails,
    )


def _buyers(count: int, create_user, db, user_model) -> list[str]:
    """The first buyer through the service; the rest share its password hash (fast set-up)."""
    first = create_user(email="buyer0@bench.test", password=PASSWORD, name="Buyer 0")
    password_hash = first.password_hash
    emails = ["buyer0@bench.test"]
    rows = []
    for i in range(1, count):
        email = f"buyer{i}@bench.test"
        emails.append(email)
        rows.append(
            user_model(email=email, password_hash=password_hash, name=f"Buyer {i}", role="buyer")
        )
    db.session.add_all(rows)
    db.session.commit()
    return emails
