"""Travel: a regional airline's flights and bookings (the project's own data, see travel.yaml)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field

from sim_tests.domains.base import Domain, ToolError

domain = Domain.from_file("travel", Path(__file__).with_name("travel.yaml"))

BookingId = Annotated[str, Field(description="Booking id, e.g. B501")]
UserId = Annotated[str, Field(description="Traveller id, e.g. t_dana")]
Cabin = Literal["economy", "business"]


def _booking(db: dict[str, Any], booking_id: str) -> dict[str, Any]:
    booking = db["bookings"].get(booking_id)
    if booking is None:
        raise ToolError(f"booking {booking_id} not found")
    return booking


def _flight(db: dict[str, Any], flight_id: str) -> dict[str, Any]:
    flight = db["flights"].get(flight_id)
    if flight is None:
        raise ToolError(f"flight {flight_id} not found")
    return flight


@domain.tool()
def get_user_details(db: dict, user_id: UserId) -> dict:
    """A traveller's name and email."""
    if user_id not in db["users"]:
        raise ToolError(f"user {user_id} not found")
    return {"user_id": user_id, **db["users"][user_id]}


@domain.tool()
def list_user_bookings(db: dict, user_id: UserId) -> list:
    """Every booking of a traveller with its flight, date, cabin and status."""
    if user_id not in db["users"]:
        raise ToolError(f"user {user_id} not found")
    out = []
    for bid, b in db["bookings"].items():
        if b["user"] == user_id:
            f = db["flights"][b["flight"]]
            out.append({"booking_id": bid, "flight": b["flight"], "route": f"{f['origin']}-{f['destination']}",
                        "date": f["date"], "cabin": b["cabin"], "status": b["status"]})
    return out


@domain.tool()
def get_booking_details(db: dict, booking_id: BookingId) -> dict:
    """One booking in full, with its flight."""
    b = _booking(db, booking_id)
    return {"booking_id": booking_id, **b, "flight_details": db["flights"][b["flight"]]}


@domain.tool()
def search_flights(db: dict, origin: Annotated[str, Field(description="Airport code, e.g. OSL")],
                   destination: Annotated[str, Field(description="Airport code, e.g. BGO")]) -> list:
    """Flights on a route with free seats per cabin and fares."""
    return [{"flight_id": fid, **f} for fid, f in db["flights"].items()
            if f["origin"] == origin.upper() and f["destination"] == destination.upper()]


@domain.tool(writes=True)
def change_booking_flight(db: dict, booking_id: BookingId,
                          flight_id: Annotated[str, Field(description="New flight id, same route")]) -> dict:
    """Move a confirmed booking to another flight on the same route, in the same cabin."""
    b = _booking(db, booking_id)
    if b["status"] != "confirmed":
        raise ToolError(f"booking {booking_id} is {b['status']}")
    old, new = _flight(db, b["flight"]), _flight(db, flight_id)
    if (old["origin"], old["destination"]) != (new["origin"], new["destination"]):
        raise ToolError(f"flight {flight_id} is not on the route {old['origin']}-{old['destination']}")
    if new["seats"][b["cabin"]] < 1:
        raise ToolError(f"flight {flight_id} has no free {b['cabin']} seat")
    old["seats"][b["cabin"]] += 1
    new["seats"][b["cabin"]] -= 1
    b["flight"] = flight_id
    return {"booking_id": booking_id, "flight": flight_id, "date": new["date"], "time": new["time"]}


@domain.tool(writes=True)
def change_cabin(db: dict, booking_id: BookingId, cabin: Cabin) -> dict:
    """Change a confirmed booking's cabin; the fare difference is charged or refunded."""
    b = _booking(db, booking_id)
    if b["status"] != "confirmed":
        raise ToolError(f"booking {booking_id} is {b['status']}")
    if b["cabin"] == cabin:
        raise ToolError(f"booking {booking_id} is already in {cabin}")
    f = _flight(db, b["flight"])
    if f["seats"][cabin] < 1:
        raise ToolError(f"flight {b['flight']} has no free {cabin} seat")
    f["seats"][b["cabin"]] += 1
    f["seats"][cabin] -= 1
    difference = f["fare"][cabin] - b["paid"]
    b["cabin"], b["paid"] = cabin, f["fare"][cabin]
    return {"booking_id": booking_id, "cabin": cabin, "fare_difference": difference}


@domain.tool(writes=True)
def cancel_booking(db: dict, booking_id: BookingId) -> dict:
    """Cancel a confirmed booking; the fare paid is refunded."""
    b = _booking(db, booking_id)
    if b["status"] != "confirmed":
        raise ToolError(f"booking {booking_id} is {b['status']}")
    b["status"] = "cancelled"
    db["flights"][b["flight"]]["seats"][b["cabin"]] += 1
    db["refunds"].append({"booking_id": booking_id, "amount": b["paid"]})
    return {"booking_id": booking_id, "status": "cancelled", "refund": b["paid"]}


@domain.tool(writes=True)
def transfer_to_human_agents(db: dict, summary: Annotated[str, Field(description="What the traveller needs")]) -> dict:
    """Hand the conversation to a human agent, with a short summary of the issue."""
    db["transfers"].append(summary)
    return {"status": "transferred", "message": "A human agent will take over shortly."}
