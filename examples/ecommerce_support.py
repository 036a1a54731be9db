"""Multilingual e-commerce support: each customer message goes to three model families.

For every message (Indonesian, Thai, Arabic, Chinese) the agent
  1. asks DeepSeek (skill "code") for the SQL that looks the order up, and runs it
     read-only on a small SQLite table;
  2. asks Llama (skill "reasoning") what the English refund policy says for that order;
  3. asks Qwen (skill "multilingual") to answer the customer in their own language,
and prints where each call went (deployment, jurisdiction), how many attempts it took
and what it cost, then the totals per jurisdiction from the ledger.

Run it:
    python examples/ecommerce_support.py --offline    # built-in emulator: no keys, no network
    export DEEPSEEK_API_KEY=... TOGETHER_API_KEY=... DASHSCOPE_INTL_API_KEY=...
    python examples/ecommerce_support.py              # real providers
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sqlite3
import sys

import hybridstack as hs
from hybridstack.testing import offline_stack

POLICY = """Items may be returned within 30 days of delivery for a full refund.
Orders not delivered 14 days after shipping are refunded in full, no return needed.
Opened electronics are refunded at 85% of the price."""

ORDERS = [  # id, item, status, days since shipped, days since delivered, price
    ("A1001", "phone case", "shipped", 20, None, 12.50),
    ("A1002", "wireless earbuds", "delivered", 9, 6, 59.00),
    ("A1003", "running shoes", "delivered", 12, 10, 80.00),
    ("A1004", "winter coat", "delivered", 45, 40, 120.00),
]

# (language, customer message, offline-only scripted decision, offline-only scripted reply)
MESSAGES = [
    (
        "Indonesian",
        "Halo, pesanan A1001 saya belum sampai padahal sudah dikirim 20 hari lalu. Bisa refund?",
        "Not delivered 20 days after shipping: full refund of 12.50, no return needed.",
        "Mohon maaf atas keterlambatannya! Pesanan A1001 kami refund penuh sebesar 12,50, tanpa perlu dikembalikan.",
    ),
    (
        "Thai",
        "สวัสดีค่ะ หูฟังจากคำสั่งซื้อ A1002 แกะกล่องแล้วแต่ใช้ไม่ได้ ขอคืนเงินได้ไหมคะ",
        "Opened electronics delivered 6 days ago: refund 85% of 59.00 = 50.15 after return.",
        "ขออภัยค่ะ คุณจะได้รับเงินคืน 50.15 (85%) หลังจากส่งหูฟังคืนมาค่ะ",
    ),
    (
        "Arabic",
        "مرحبا، أريد إرجاع الحذاء من الطلب A1003 لأن المقاس غير مناسب. هل يمكنني استرداد المبلغ؟",
        "Delivered 10 days ago, within 30 days: full refund of 80.00 after return.",
        "نعم بالتأكيد! أعد الحذاء خلال 30 يومًا من الاستلام وسنرد لك 80.00 كاملة.",
    ),
    (
        "Chinese",
        "你好，订单A1004的外套已经收到40天了，现在还能退款吗？",
        "Delivered 40 days ago, past the 30-day window: no refund.",
        "很抱歉，订单A1004已超过30天退货期限，无法退款。如需帮助请随时联系我们。",
    ),
]


def scripted(text: str, offline: bool) -> str:
    """Offline only: tell the emulator what to 'answer', so the output reads well."""
    return f"\nEMULATOR_REPLY: {text}" if offline else ""


def run_sql(db: sqlite3.Connection, reply: str) -> dict | str:
    query = re.sub(r"^```\w*|```$", "", reply.strip()).strip()
    if not query.lower().startswith("select"):
        return f"(not run: the model did not write a SELECT: {query[:60]!r})"
    try:
        row = db.execute(query).fetchone()
    except sqlite3.Error as exc:
        return f"(the SQL failed: {exc})"
    return dict(row) if row else "(no such order)"


def real_stack() -> hs.Stack:
    """The real providers, keys from the environment (`hybridstack doctor` lists them)."""
    catalog = hs.Catalog.default()
    if not any(os.environ.get(d.api_key_env) for d in catalog if d.api_key_env):
        sys.exit(
            "error: no provider API key is set. Export e.g. DEEPSEEK_API_KEY, TOGETHER_API_KEY "
            "and DASHSCOPE_INTL_API_KEY, or run with --offline to use the built-in emulator."
        )
    return hs.Stack(catalog)


async def run(offline: bool) -> None:
    db = sqlite3.connect(":memory:")
    db.row_factory = sqlite3.Row
    db.execute(
        "CREATE TABLE orders (id TEXT, item TEXT, status TEXT, days_since_shipped INT, "
        "days_since_delivered INT, price REAL)"
    )
    db.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?)", ORDERS)
    schema = "orders(id, item, status, days_since_shipped, days_since_delivered, price)"

    async with offline_stack(seed=7) if offline else real_stack() as stack:
        for n, (language, message, decision_text, reply_text) in enumerate(MESSAGES, 1):
            ticket = f"ticket-{n}"  # run_id: groups this message's calls in the ledger
            order_id = re.search(r"A\d{4}", message).group(0)  # only for the scripted SQL
            sql = await stack.complete(
                f"SQLite table {schema}. Reply with one SELECT (no prose) that returns the "
                f"order this customer writes about:\n{message}"
                + scripted(f"SELECT * FROM orders WHERE id = '{order_id}'", offline),
                skill="code",
                run_id=ticket,
            )
            order = run_sql(db, sql.text)
            decision = await stack.complete(
                f"Refund policy:\n{POLICY}\n\nOrder: {order}\nCustomer: {message}\n"
                "In one sentence: does a refund apply, and how much?"
                + scripted(decision_text, offline),
                skill="reasoning",
                run_id=ticket,
            )
            reply = await stack.complete(
                f"Answer this customer in {language}, kindly, in at most two sentences. "
                f"Our decision: {decision.text}\nCustomer: {message}"
                + scripted(reply_text, offline),
                skill="multilingual",
                run_id=ticket,
            )

            cost = stack.ledger.totals(run_id=ticket)["all"].cost_usd
            print(f"\n== {language} (${cost:.6f}): {message}")
            for a in stack.ledger.attempts(run_id=ticket):  # failed attempts would show too
                where = f"{a.deployment} ({a.jurisdiction})"
                print(f"  {a.skill:<13}{where:<40}{a.outcome:<6}${a.cost_usd:.6f}")
            print(f"  order:    {order}\n  decision: {decision.text}\n  reply:    {reply.text}")

        print("\nledger by jurisdiction:")
        for where, t in sorted(stack.ledger.totals(by="jurisdiction").items()):
            print(f"  {where:<6} {t.calls} calls  {t.attempts} attempts  ${t.cost_usd:.6f}")
        print(f"total: ${stack.ledger.totals()['all'].cost_usd:.6f}")
    if offline:
        print(
            "\nThe model text above is SIMULATED by hybridstack's emulator; routing, HTTP, "
            "retries and the priced ledger are real. Drop --offline to use real providers."
        )


def main() -> None:
    parser = argparse.ArgumentParser(description="Multilingual e-commerce support agent.")
    parser.add_argument("--offline", action="store_true", help="use the built-in emulator")
    args = parser.parse_args()
    try:
        asyncio.run(run(args.offline))
    except hs.HybridStackError as exc:
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main()
