"""Demo data: two real-looking cooperatives, their products, demo users, a scheduled stream.

Idempotent: every row is looked up by its natural key first and only missing rows are added,
so a second run changes nothing (and never resets stock that demo shoppers bought). The live
package adds its scheduled session through the `farmlive.seeders` hook.
"""

from __future__ import annotations

from collections.abc import Iterator

from flask import current_app
from sqlalchemy import select

from shop import demo_photos
from shop.accounts import find_user_by_email
from shop.database import begin_write
from shop.extensions import db
from shop.models import Cooperative, Product, Variant

DEMO_PASSWORD = "farmlive-demo"
DEMO_USERS = [
    {"role": "admin", "email": "admin@farmlive.test", "name": "县电商中心"},
    {"role": "host", "email": "host@farmlive.test", "name": "王副县长"},
    {"role": "coop", "email": "coop@farmlive.test", "name": "尉犁羊肉合作社", "coop": "mutton"},
    {"role": "coop", "email": "veg@farmlive.test", "name": "华家岭蔬菜合作社", "coop": "veg"},
    {"role": "buyer", "email": "buyer@farmlive.test", "name": "张女士"},
]

COOPERATIVES = {
    "mutton": {
        "name": "尉犁县罗布羊养殖专业合作社",
        "region": "新疆 巴音郭楞州 尉犁县",
        "description": "塔里木河畔放养的罗布羊，吃胡杨林下的甘草和罗布麻长大，肉质细嫩不膻。"
        "合作社统一屠宰分割，冷链发货。",
        "products": [
            {
                "name": "罗布羊后腿",
                "motif": "leg",
                "description": "整只后腿，适合烤羊腿、手抓肉。真空包装，顺丰冷链。",
                "variants": [("2 kg 装", 17600, 60), ("4 kg 装", 33800, 25)],
            },
            {
                "name": "罗布羊排",
                "motif": "ribs",
                "description": "精选肋排，红烧、清炖、烤羊排都好吃。",
                "variants": [("1 kg 装", 9800, 80), ("2 kg 装", 18800, 40)],
            },
            {
                "name": "整羊",
                "motif": "lamb",
                "description": "当年罗布羔羊，约 15 kg，按部位分割装箱，适合家庭聚会和单位食堂。",
                "variants": [("整羊 约 15 kg", 168000, 8)],
            },
        ],
    },
    "veg": {
        "name": "华家岭镇高原蔬菜专业合作社",
        "region": "甘肃 定西市 通渭县 华家岭镇",
        "description": "海拔两千米的华家岭，昼夜温差大，蔬菜生长慢、口感甜。"
        "合作社带动三百多户农户种植，当天采收当天发货。",
        "products": [
            {
                "name": "华家岭马铃薯",
                "motif": "potato",
                "description": "高原黄心土豆，淀粉足，炖、炒、蒸都面沙。",
                "variants": [("5 kg 装", 2990, 200), ("10 kg 装", 4990, 120)],
            },
            {
                "name": "高原娃娃菜",
                "motif": "cabbage",
                "description": "冷凉气候种植，叶嫩帮脆，涮火锅、清炒都合适。",
                "variants": [("2.5 kg 装", 2680, 150), ("5 kg 装", 4680, 80)],
            },
            {
                "name": "胡萝卜",
                "motif": "carrot",
                "description": "沙壤土种植，颜色鲜亮，生吃清甜。",
                "variants": [("5 kg 装", 2590, 140)],
            },
            {
                "name": "紫皮洋葱",
                "motif": "onion",
                "description": "辣味适中，耐储存，凉拌炒菜两相宜。",
                "variants": [("5 kg 装", 2290, 100)],
            },
        ],
    },
}


def seed() -> Iterator[str]:
    """Add whatever demo rows are missing, then run the seeders other packages registered."""
    coop_ids: dict[str, int] = {}
    for key, spec in COOPERATIVES.items():
        coop_ids[key] = yield from _cooperative(spec)
    yield from _users(coop_ids)
    for seeder in current_app.extensions.get("farmlive.seeders", []):
        yield from seeder()


def _cooperative(spec: dict) -> Iterator[str]:
    begin_write()
    coop = db.session.scalar(select(Cooperative).where(Cooperative.name == spec["name"]))
    if coop is None:
        coop = Cooperative(
            name=spec["name"], region=spec["region"], description=spec["description"]
        )
        db.session.add(coop)
        db.session.flush()
        yield f"cooperative {coop.name} ({coop.region})"
    folder = current_app.config["UPLOAD_FOLDER"]
    for item in spec["products"]:
        photo = demo_photos.ensure(folder, item["motif"])
        query = select(Product).where(
            Product.cooperative_id == coop.id, Product.name == item["name"]
        )
        if db.session.scalar(query) is not None:
            continue
        product = Product(
            cooperative=coop, name=item["name"], description=item["description"], photo=photo
        )
        product.variants = [Variant(name=n, price=p, stock=s) for n, p, s in item["variants"]]
        db.session.add(product)
        yield f"  product {product.name}: " + ", ".join(v.name for v in product.variants)
    coop_id = coop.id
    db.session.commit()
    return coop_id


def _users(coop_ids: dict[str, int]) -> Iterator[str]:
    from shop.services import create_user

    for spec in DEMO_USERS:
        if find_user_by_email(spec["email"]) is not None:
            continue
        user = create_user(
            email=spec["email"],
            password=DEMO_PASSWORD,
            name=spec["name"],
            role=spec["role"],
            cooperative_id=coop_ids.get(spec.get("coop", "")),
        )
        yield f"user {user.role} {user.email}"
