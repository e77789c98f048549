"""Chinese first, English second: pages speak Chinese unless the reader picks English, and the
Chinese catalog translates every message the source marks, so a new string without a
translation fails here rather than showing up in English on a phone."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from config import BASE_DIR
from tests.conftest import ApiClient, Factory, make_app
from tests.shop.conftest import Browser

TRANSLATIONS = BASE_DIR / "shop" / "translations"
PYBABEL = Path(sys.executable).with_name("pybabel")
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]")
ADDRESS = {"name": "李梅", "phone": "13800000000", "region": "新疆 尉犁县", "detail": "团结路 1 号"}


def _catalog(lang: str):
    with open(TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po", "rb") as po:
        return read_po(po, locale=lang)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The catalogs compiled into a fresh folder, the way `make setup` compiles them in place."""
    target = tmp_path_factory.mktemp("translations")
    shutil.copytree(TRANSLATIONS, target, dirs_exist_ok=True)
    result = subprocess.run(
        [str(PYBABEL), "compile", "-d", str(target)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "error" not in (result.stdout + result.stderr).lower(), result.stderr
    return target


@pytest.fixture
def zh_app(database_url: str, tmp_path: Path, compiled: Path):
    """The app reading the freshly compiled catalogs (so the test never depends on a stale .mo)."""
    from shop.extensions import db

    app = make_app(database_url, tmp_path, BABEL_TRANSLATION_DIRECTORIES=str(compiled))
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_catalogs_compile(compiled: Path) -> None:
    for lang in ("zh", "en"):
        mo = compiled / lang / "LC_MESSAGES" / "messages.mo"
        assert mo.is_file() and mo.stat().st_size > 0, lang


def test_zh_catalog_translates_everything() -> None:
    catalog = _catalog("zh")
    messages = [m for m in catalog if m.id]
    assert len(messages) > 300
    untranslated = [m.id for m in messages if not m.string]
    fuzzy = [m.id for m in messages if m.fuzzy]
    broken = [
        m.id
        for m in messages
        if m.string and sorted(PLACEHOLDER.findall(m.id)) != sorted(PLACEHOLDER.findall(m.string))
    ]
    assert not untranslated, f"add Chinese for: {untranslated}"
    assert not fuzzy, f"check these fuzzy guesses and clear the flag: {fuzzy}"
    assert not broken, f"placeholders differ from the English: {broken}"


def test_catalog_covers_every_marked_string(tmp_path: Path) -> None:
    """Extract as the team does; every msgid must already be in the zh catalog."""
    pot = tmp_path / "messages.pot"
    result = subprocess.run(
        [
            str(PYBABEL),
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "_l",
            "-k",
            "lazy_gettext",
            "-o",
            str(pot),
            "--ignore-dirs=.venv node_modules",
            ".",
        ],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    with open(pot, "rb") as source:
        extracted = {m.id for m in read_po(source) if m.id}
    translated = {m.id for m in _catalog("zh") if m.id and m.string and not m.fuzzy}
    missing = sorted(str(i) for i in extracted - translated)
    assert not missing, (
        "run `pybabel extract ... && pybabel update -i messages.pot -d shop/translations` "
        f"and translate: {missing}"
    )


def test_pages_are_chinese_by_default(zh_app) -> None:
    factory = Factory(zh_app)
    product = factory.product(
        factory.cooperative(), variants=[{"name": "2 公斤", "price": 8800, "stock": 3}]
    )
    client = zh_app.test_client()

    home = client.get("/").get_data(as_text=True)
    assert '<html lang="zh-CN">' in home
    assert "购物车" in home and "搜索" in home and ">Cart<" not in home
    page = client.get(f"/products/{product['id']}").get_data(as_text=True)
    assert "加入购物车" in page and "库存 3" in page and "Add to cart" not in page
    assert "登录" in client.get("/login").get_data(as_text=True)
    assert "购物车是空的" in client.get("/cart").get_data(as_text=True)
    missing = client.get("/no-such-page")
    assert missing.status_code == 404 and "找不到您要访问的页面" in missing.get_data(as_text=True)


def test_language_switch_gives_english_and_back(zh_app) -> None:
    Factory(zh_app).cooperative()
    client = zh_app.test_client()
    assert client.get("/language/en").status_code == 302
    home = client.get("/").get_data(as_text=True)
    assert '<html lang="en">' in home and "Cart" in home and "购物车" not in home
    assert "Log in" in client.get("/login").get_data(as_text=True)
    client.get("/language/zh")
    assert "购物车" in client.get("/").get_data(as_text=True)
    assert "Your cart is empty." in zh_app.test_client().get("/cart?lang=en").get_data(as_text=True)


def test_order_status_and_service_messages_are_translated(zh_app) -> None:
    factory = Factory(zh_app)
    product = factory.product(variants=[{"name": "2 公斤", "price": 8800, "stock": 3}])
    buyer = factory.user("buyer")
    api = ApiClient(zh_app.test_client())
    api.login(buyer.email, buyer.password)
    items = [{"variant_id": product["variant_ids"][0], "quantity": 1}]
    order = api.post("/orders", {"items": items, "address": ADDRESS}).get_json()

    mine = api.client.get("/orders").get_data(as_text=True)
    assert order["number"] in mine and "待支付" in mine
    assert "Pending payment" in api.client.get("/orders?lang=en").get_data(as_text=True)

    page = Browser(zh_app.test_client())
    wrong = page.post("/login", {"email": buyer.email, "password": "not-the-password"})
    assert "邮箱或密码错误" in wrong.get_data(as_text=True)
    short = page.post("/register", {"name": "王", "email": "wang@example.com", "password": "short"})
    assert short.status_code == 422
    assert "长度需在 8 到 128 个字符之间" in short.get_data(as_text=True)


def test_service_messages_with_values_read_naturally(zh_app) -> None:
    from shop.i18n import translate_message

    refused = "Order FL42 is paid; it cannot be refunded."
    header = (
        "The header must name the columns order number, carrier, tracking number; "
        "missing: carrier, tracking number."
    )
    with zh_app.test_request_context("/"):
        assert translate_message(refused) == "订单 FL42 当前为“已支付”，不能退款。"
        assert translate_message(header).endswith("缺少：快递公司、运单号。")
        assert translate_message("Shorter than minimum length 8.") == "至少 8 个字符。"
        assert translate_message("Made up by a future service.") == "Made up by a future service."
    with zh_app.test_request_context("/?lang=en"):
        assert translate_message(refused) == refused and translate_message(header) == header
