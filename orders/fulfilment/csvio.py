"""Courier files: read the shipping CSV a cooperative uploads, write the one it exports."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

from orders.fulfilment.errors import InvalidCsv
from orders.models import Shipment
from shop.i18n import N_
from shop.templating import local_time
from shop.text import encode_utf8

MAX_FIELD = 80
# Header names a courier's system or a spreadsheet may use, compared after normalising.
_COLUMNS = {
    "order_number": {"order number", "order no", "order", "订单号", "订单编号"},
    "carrier": {"carrier", "courier", "快递公司", "物流公司", "快递"},
    "tracking_number": {"tracking number", "tracking no", "tracking", "运单号", "快递单号"},
}
_LABELS = {
    "order_number": "order number",
    "carrier": "carrier",
    "tracking_number": "tracking number",
}
EXPORT_HEADER = [
    "order number",
    "buyer name",
    "phone",
    "region",
    "address",
    "items",
    "units",
    "paid at",
    "carrier",
    "tracking number",
]
_PHONE = re.compile(r"^\+?[\d\s-]+$")


@dataclass(frozen=True)
class ShipRow:
    line: int
    order_number: str
    carrier: str
    tracking_number: str


def read_ship_rows(data: bytes) -> tuple[list[ShipRow], dict[int, list[str]]]:
    """Parse the upload; file-level faults raise InvalidCsv, row faults come back by line."""
    text = _decode(data)
    first = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first and "," not in first else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(reader, None)
    if header is None:
        raise InvalidCsv(
            fields={"file": {"1": [N_("The file is empty; line 1 must be the header.")]}}
        )
    positions = _header_positions(header)
    rows: list[ShipRow] = []
    errors: dict[int, list[str]] = {}
    first_seen: dict[str, int] = {}
    line = reader.line_num
    for cells in reader:
        start, line = line + 1, reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        number, carrier, tracking = (_cell(cells, positions[key]) for key in _LABELS)
        row = ShipRow(start, number.upper(), carrier, tracking)
        problems = _row_problems(row, first_seen)
        if problems:
            errors[start] = problems
        rows.append(row)
    if not rows:
        raise InvalidCsv(fields={"file": {"2": [N_("There are no rows after the header.")]}})
    return rows, errors


def _decode(data: bytes) -> str:
    """UTF-8 with or without a byte-order mark; anything else is reported at its line."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise InvalidCsv(
            fields={"file": {str(line): [N_("This line is not UTF-8 text.")]}}
        ) from None


def _header_positions(header: list[str]) -> dict[str, int]:
    names = [" ".join(cell.replace("_", " ").replace("-", " ").split()).lower() for cell in header]
    positions: dict[str, int] = {}
    for key, aliases in _COLUMNS.items():
        for index, name in enumerate(names):
            if name in aliases:
                positions[key] = index
                break
    missing = [_LABELS[key] for key in _COLUMNS if key not in positions]
    if missing:
        message = (
            "The header must name the columns order number, carrier, tracking number; "
            f"missing: {', '.join(missing)}."
        )
        raise InvalidCsv(fields={"file": {"1": [message]}})
    return positions


def _cell(cells: list[str], index: int) -> str:
    return cells[index].strip() if index < len(cells) else ""


def _row_problems(row: ShipRow, first_seen: dict[str, int]) -> list[str]:
    problems = []
    for key in _LABELS:
        value = getattr(row, key)
        if not value:
            problems.append(f"The {_LABELS[key]} is missing.")
        elif len(value) > MAX_FIELD:
            problems.append(f"The {_LABELS[key]} is longer than {MAX_FIELD} characters.")
        elif not value.isprintable():  # NUL and other control characters: unprintable on a label
            problems.append(f"The {_LABELS[key]} contains control characters.")
    number = row.order_number
    if number in first_seen:
        problems.append(f"Order {number} appears again (first on line {first_seen[number]}).")
    elif number:
        first_seen[number] = row.line
    return problems


def write_courier_csv(shipments: list[Shipment]) -> bytes:
    """One row per shipment with what a courier needs; UTF-8 with a BOM so Excel reads it."""
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(EXPORT_HEADER)
    for shipment in shipments:
        order = shipment.order
        address = order.address or {}
        items = shipment.items
        writer.writerow(
            [
                _safe(order.number),
                _safe(address.get("name", "")),
                _safe(address.get("phone", "")),
                _safe(address.get("region", "")),
                _safe(address.get("detail", "")),
                _safe("; ".join(f"{item.name} x{item.quantity}" for item in items)),
                sum(item.quantity for item in items),
                local_time(order.paid_at),
                _safe(shipment.carrier or ""),
                _safe(shipment.tracking_number or ""),
            ]
        )
    return encode_utf8("\ufeff" + out.getvalue())  # a row stored with bad text still exports


def _safe(value: str) -> str:
    """Keep spreadsheet formulas out of buyer-typed text (CSV injection); phone numbers stay."""
    value = str(value)
    if value[:1] in ("=", "+", "-", "@", "\t", "\r") and not _PHONE.match(value):
        return "'" + value
    return value
