"""`flask --app wsgi users ...` and `flask --app wsgi seed-demo`."""

from __future__ import annotations

import click
from flask.cli import AppGroup, with_appcontext

from shop.errors import DomainError
from shop.models import Role

users_cli = AppGroup("users", help="Manage accounts.")


@users_cli.command("create")
@click.option("--email", required=True)
@click.option("--password", required=True)
@click.option("--role", type=click.Choice([r.value for r in Role]), default=Role.BUYER.value)
@click.option("--cooperative", "cooperative_id", type=int, default=None)
@click.option("--name", default=None)
def create_user_command(
    email: str, password: str, role: str, cooperative_id: int | None, name: str | None
) -> None:
    """Create an account of any role."""
    from shop.services import create_user

    try:
        user = create_user(
            email=email,
            password=password,
            name=name or email.split("@")[0],
            role=role,
            cooperative_id=cooperative_id,
        )
    except DomainError as err:
        detail = "; ".join(f"{k}: {' '.join(v)}" for k, v in err.fields.items())
        raise click.ClickException(f"{err.message} {detail}".strip()) from None
    click.echo(f"created {user.role} {user.email} (id {user.id})")


@click.command("seed-demo")
@with_appcontext
def seed_demo() -> None:
    """Load the demo cooperatives, products, users and a scheduled session (idempotent).

    Only with DEMO=1 (`make run` sets it): the demo accounts, an admin among them, share a
    password that is printed in the README and on every `make run`.
    """
    from flask import current_app

    from shop.demo import DEMO_PASSWORD, seed

    if not current_app.config.get("DEMO"):
        raise click.ClickException(
            "seed-demo creates accounts, an admin among them, whose password "
            f"({DEMO_PASSWORD}) is public; it runs only with DEMO=1 in the environment "
            "(`make run` sets it). Nothing was changed."
        )

    for line in seed():
        click.echo(line)
    click.echo("demo data ready")


@click.command("demo-logins")
@with_appcontext
def demo_logins() -> None:
    """Print the demo accounts and where to open the site."""
    from flask import current_app

    from shop.demo import DEMO_PASSWORD, DEMO_USERS

    host, port = current_app.config["HOST"], current_app.config["PORT"]
    click.echo(
        f"\nFarmlive is starting at http://{host}:{port}/  (payments: "
        f"{current_app.config['PAYMENT_PROVIDER']})\nDemo logins (password {DEMO_PASSWORD}):"
    )
    for user in DEMO_USERS:
        click.echo(f"  {user['role']:<6} {user['email']:<28} {user['name']}")
    click.echo("")
