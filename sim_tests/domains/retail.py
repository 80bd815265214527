"""Retail: a home-goods shop's customers and orders (the project's own data, see retail.yaml)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field

from sim_tests.domains.base import Domain, ToolError

domain = Domain.from_file("retail", Path(__file__).with_name("retail.yaml"))

OrderId = Annotated[str, Field(description="Order id, e.g. R1002")]
UserId = Annotated[str, Field(description="Customer id, e.g. u_ava")]


def _order(db: dict[str, Any], order_id: str) -> dict[str, Any]:
    order = db["orders"].get(order_id)
    if order is None:
        raise ToolError(f"order {order_id} not found")
    return order


@domain.tool()
def find_user_by_email(db: dict, email: Annotated[str, Field(description="The customer's email")]) -> dict:
    """Look up a customer id by email address."""
    for uid, user in db["users"].items():
        if user["email"].lower() == email.strip().lower():
            return {"user_id": uid, "name": user["name"]}
    raise ToolError(f"no customer with email {email}")


@domain.tool()
def get_user_details(db: dict, user_id: UserId) -> dict:
    """A customer's name, email and default address."""
    if user_id not in db["users"]:
        raise ToolError(f"user {user_id} not found")
    return {"user_id": user_id, **db["users"][user_id]}


@domain.tool()
def list_user_orders(db: dict, user_id: UserId) -> list:
    """Every order of a customer: id, status, item names and total."""
    if user_id not in db["users"]:
        raise ToolError(f"user {user_id} not found")
    return [{"order_id": oid, "status": o["status"], "items": [i["name"] for i in o["items"]], "total": o["total"]}
            for oid, o in db["orders"].items() if o["user"] == user_id]


@domain.tool()
def get_order_details(db: dict, order_id: OrderId) -> dict:
    """One order in full: status, items, total and shipping address."""
    return {"order_id": order_id, **_order(db, order_id)}


@domain.tool(writes=True)
def cancel_pending_order(db: dict, order_id: OrderId,
                         reason: Literal["no_longer_needed", "ordered_by_mistake"]) -> dict:
    """Cancel an order that is still pending; the total is refunded to the original payment."""
    order = _order(db, order_id)
    if order["status"] != "pending":
        raise ToolError(f"order {order_id} is {order['status']}, only pending orders can be cancelled")
    order["status"] = "cancelled"
    order["cancel_reason"] = reason
    db["refunds"].append({"order_id": order_id, "amount": order["total"]})
    return {"order_id": order_id, "status": "cancelled", "refund": order["total"]}


@domain.tool(writes=True)
def modify_pending_order_address(db: dict, order_id: OrderId,
                                 address: Annotated[str, Field(description="The full new address")]) -> dict:
    """Change the shipping address of a pending order."""
    order = _order(db, order_id)
    if order["status"] != "pending":
        raise ToolError(f"order {order_id} is {order['status']}, its address can no longer change")
    order["address"] = address.strip()
    return {"order_id": order_id, "address": order["address"]}


@domain.tool(writes=True)
def return_delivered_order(db: dict, order_id: OrderId) -> dict:
    """Return a delivered order in full; the total is refunded to the original payment."""
    order = _order(db, order_id)
    if order["status"] != "delivered":
        raise ToolError(f"order {order_id} is {order['status']}, only delivered orders can be returned")
    order["status"] = "return_requested"
    db["refunds"].append({"order_id": order_id, "amount": order["total"]})
    return {"order_id": order_id, "status": "return_requested", "refund": order["total"]}


@domain.tool(writes=True)
def transfer_to_human_agents(db: dict, summary: Annotated[str, Field(description="What the customer needs")]) -> dict:
    """Hand the conversation to a human agent, with a short summary of the issue."""
    db["transfers"].append(summary)
    return {"status": "transferred", "message": "A human agent will take over shortly."}
