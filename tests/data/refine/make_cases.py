"""Writes the refinement set: dialogues with a draft reply, each clean or with one known defect.

    python tests/data/refine/make_cases.py      # rewrites tests/data/refine/cases/*.json

Each file is what ``rein refine`` reads ({"messages", "tools", "draft"}, optionally "profile"), plus
"expect": {"defect": none|fact|constraint|unanswered|contradiction, "contains": [...], "any": [...],
"absent": [...], "max_words": N}. A defect counts as fixed when every "contains" string, one of
"any" (if given), and none of "absent" is in the final reply (case-insensitive), within max_words.
"""
from __future__ import annotations

import json
from pathlib import Path

OUT = Path(__file__).parent / "cases"

DOMAINS = {  # name: (tool, arguments, result, user question, clean draft, (defective draft, expect))
    "order": ("get_order", {"order_id": "A1234"},
              {"order_id": "A1234", "status": "shipped", "total": 42.5, "currency": "USD",
               "delivery_date": "2025-03-14", "carrier": "UPS"},
              "Where is my order A1234?",
              "Your order A1234 has shipped with UPS and should arrive on March 14. The total was $42.50.",
              ("Your order A1234 has shipped with UPS and should arrive on March 16. The total was $42.50.",
               {"contains": ["March 14"], "absent": ["March 16"]})),
    "flight": ("get_booking", {"booking_ref": "QX7P2L"},
               {"booking_ref": "QX7P2L", "flight": "LH 401", "departure_date": "2025-06-02",
                "departure_time": "14:35", "from": "Frankfurt", "to": "New York JFK", "seat": "23A",
                "status": "confirmed"},
               "Can you check my booking QX7P2L?",
               "Your booking QX7P2L is confirmed: flight LH 401 leaves Frankfurt on June 2 at 14:35, seat 23A.",
               ("Your booking QX7P2L is confirmed: flight LH 401 leaves Frankfurt on June 2 at 15:35, seat 23A.",
                {"contains": ["14:35"], "absent": ["15:35"]})),
    "hotel": ("get_reservation", {"confirmation": "HM-88213"},
              {"confirmation": "HM-88213", "hotel_name": "Hotel Marais", "check_in": "2025-04-18", "nights": 3,
               "total_price": 615.0, "currency": "EUR"},
              "Is my hotel booking still on?",
              "Yes - you're booked at Hotel Marais from April 18 for 3 nights; confirmation HM-88213, total €615.00.",
              ("Yes - you're booked at Hotel Marais from April 18 for 3 nights; confirmation HM-88231, total €615.00.",
               {"contains": ["HM-88213"], "absent": ["HM-88231"]})),
    "bank": ("get_account", {"account": "****4821"},
             {"account": "****4821", "balance": 1250.75,
              "pending_transfer": {"amount": 300.0, "to": "Sam Lee", "status": "pending",
                                   "expected_date": "2025-02-07"}},
             "What's my balance, and did the transfer to Sam go through?",
             "Your balance is $1,250.75. The $300.00 transfer to Sam Lee is still pending and should clear on February 7.",
             ("Your balance is $1,520.75. The $300.00 transfer to Sam Lee is still pending and should clear on February 7.",
              {"contains": ["$1,250.75"], "absent": ["1,520.75"]})),
    "ticket": ("get_ticket", {"ticket_id": "T-50912"},
               {"ticket_id": "T-50912", "status": "escalated", "assigned_team": "Billing", "opened": "2025-01-21",
                "priority": "high"},
               "Any news on ticket T-50912?",
               "Ticket T-50912 has been escalated to our Billing team with high priority; it was opened on January 21.",
               ("Ticket T-50912 has been resolved by our Billing team with high priority; it was opened on January 21.",
                {"contains": ["escalated"], "absent": ["resolved"]})),
    "appointment": ("get_appointment", {"patient": "me"},
                    {"appointment_id": "AP-3307", "doctor_name": "Dr. Okafor", "date": "2025-05-09", "time": "09:30",
                     "clinic": "Northside Clinic"},
                    "When is my next appointment?",
                    "Your appointment AP-3307 with Dr. Okafor is on May 9 at 9:30 am at Northside Clinic.",
                    ("Your appointment AP-3307 with Dr. Okafor is on May 19 at 9:30 am at Northside Clinic.",
                     {"contains": ["May 9 "], "absent": ["May 19"]})),
    "subscription": ("get_subscription", {},
                     {"plan": "Pro", "status": "active", "price": 19.99, "renewal_date": "2025-07-01", "seats": 5},
                     "What am I paying for at the moment?",
                     "Your Pro plan is active with 5 seats at $19.99 per month; it renews on July 1.",
                     ("Your Pro plan is active with 5 seats at $29.99 per month; it renews on July 1.",
                      {"contains": ["$19.99"], "absent": ["$29.99"]})),
    "refund": ("get_refund", {"order_id": "B5521"},
               {"refund_id": "RF-2207", "order_id": "B5521", "amount": 64.0, "status": "processing",
                "expected_date": "2025-03-03"},
               "Where's my refund for order B5521?",
               "Refund RF-2207 for order B5521 is processing: $64.00 should reach your card by March 3.",
               ("Refund RF-2207 for order B5521 is processing: $46.00 should reach your card by March 3.",
                {"contains": ["$64.00"], "absent": ["$46.00"]})),
    "package": ("track_package", {"tracking_number": "1Z999AA10123456784"},
                {"tracking_number": "1Z999AA10123456784", "status": "out for delivery", "eta": "2025-03-11",
                 "last_scan": "Denver"},
                "Where's my package?",
                "Your package 1Z999AA10123456784 is out for delivery from Denver and should arrive on March 11.",
                ("Your package 1Z999AA10123456784 is in transit from Denver and should arrive on March 11.",
                 {"contains": ["out for delivery"], "absent": ["in transit"]})),
    "rental": ("get_rental", {"reservation_id": "CR-7781"},
               {"reservation_id": "CR-7781", "car": "Toyota Corolla", "pickup_date": "2025-08-14",
                "pickup_time": "10:00", "daily_rate": 39.0, "days": 4, "total": 156.0},
               "Can you confirm my rental CR-7781?",
               "Rental CR-7781 is confirmed: a Toyota Corolla, pickup on August 14 at 10:00, 4 days at $39.00 a day, $156.00 in total.",
               ("Rental CR-7781 is confirmed: a Toyota Corolla, pickup on August 14 at 10:00, 4 days at $39.00 a day, $165.00 in total.",
                {"contains": ["$156.00"], "absent": ["$165.00"]})),
    "gym": ("get_membership", {},
            {"member_id": "GM-44120", "status": "suspended", "reason": "payment failed", "amount_due": 35.0},
            "Why can't I get into the gym?",
            "Your membership GM-44120 is suspended because a payment failed; $35.00 is due to reactivate it.",
            ("Your membership GM-44210 is suspended because a payment failed; $35.00 is due to reactivate it.",
             {"contains": ["GM-44120"], "absent": ["GM-44210"]})),
    "train": ("get_ticket_booking", {"ref": "TR-6612"},
              {"ref": "TR-6612", "train": "ICE 578", "departure_date": "2025-09-20", "departure_time": "08:12",
               "platform": 7, "coach": 5, "status": "booked"},
              "What are my train details?",
              "Booking TR-6612 is booked: ICE 578 departs on September 20 at 08:12 from platform 7, coach 5.",
              ("Booking TR-6612 is booked: ICE 578 departs on September 20 at 08:12 from platform 9, coach 5.",
               {"contains": ["platform 7"], "absent": ["platform 9"]})),
}


def tool_dialogue(name: str, history: list | None = None, question: str | None = None):
    tool, args, result, user, *_ = DOMAINS[name]
    messages = list(history or []) + [
        {"role": "user", "content": question or user},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": f"call_{name}", "type": "function", "function": {"name": tool, "arguments": json.dumps(args)}}]},
        {"role": "tool", "tool_call_id": f"call_{name}", "content": json.dumps(result)}]
    tools = [{"type": "function", "function": {"name": tool, "description": f"Look up the user's {name}.",
                                               "parameters": {"type": "object", "properties": {}}}}]
    return messages, tools


def chat(*turns: str):
    roles = ["user", "assistant"]
    return [{"role": roles[i % 2], "content": t} for i, t in enumerate(turns)]


def cases():
    out = {}
    for name, (_, _, _, _, clean, (bad, expect)) in DOMAINS.items():
        messages, tools = tool_dialogue(name)
        out[f"clean-{name}"] = {"messages": messages, "tools": tools, "draft": clean}
        out[f"fact-{name}"] = {"messages": messages, "tools": tools, "draft": bad, "expect": {"defect": "fact", **expect}}

    plain = {
        "clean-chat-python": ("What's a good way to start learning Python?",
                              "Start with the official tutorial, then build something small you care about, like a script that renames your photos."),
        "clean-chat-stretch": ("Any stretch for a stiff lower back?",
                               "Try a gentle knee-to-chest stretch: lie on your back, pull one knee in, hold for 20 seconds, then switch sides."),
        "clean-chat-poem": ("Write me a two-line poem about rain.",
                            "Soft rain on the window,\nthe city hums a slower song."),
        "clean-chat-capital": ("What's the capital of Australia?", "The capital of Australia is Canberra."),
    }
    for key, (q, a) in plain.items():
        out[key] = {"messages": chat(q), "draft": a}
    out["clean-ack-thanks"] = {"messages": chat("Where is my order?", "It shipped yesterday.", "Thanks, that's all!"),
                               "draft": "You're welcome - have a great day!"}
    m, t = tool_dialogue("order", question="Great, thanks!")
    out["clean-ack-after-tool"] = {"messages": m, "tools": t, "draft": "Happy to help!"}
    m, t = tool_dialogue("order")
    out["clean-profile-metric"] = {"messages": m, "tools": t, "profile": {"units": "metric", "name": "Dana"},
                                   "draft": "Hi Dana, your order A1234 has shipped with UPS; the depot is 12 km away and it should arrive on March 14."}
    out["clean-profile-vegetarian"] = {
        "messages": chat("Any good place for dinner near the hotel?"), "profile": {"constraints": ["vegetarian"]},
        "draft": "Green Leaf, a vegetarian bistro 400 m from the hotel, has great reviews."}
    out["clean-profile-formal"] = {
        "messages": chat("Could you tell me when the office opens?"), "profile": {"tone": "formal"},
        "draft": "Good morning. The office opens at 9:00 am on weekdays."}
    out["clean-history-repeat"] = {
        "messages": chat("How much is the repair?", "The repair will cost $180 including parts.", "Ok, please go ahead."),
        "draft": "Done - the repair is booked and will cost $180 including parts."}
    out["clean-history-update"] = {
        "messages": chat("What's my refund?", "Your refund of $30.00 will be issued on May 3.",
                         "I'm also returning the charger."),
        "draft": "Got it - your updated refund is $45.00, issued on May 3."}
    m, t = tool_dialogue("ticket", history=chat("Hi, I opened a ticket about a double charge.",
                                                "Thanks, let me look it up."))
    out["clean-history-tool"] = {"messages": m, "tools": t,
                                 "draft": "Ticket T-50912 has been escalated to our Billing team; they handle double charges."}

    # Ignored user constraints (profile or stated in the dialogue).
    route = {"distance_miles": 12, "duration_min": 25}
    m = chat("How far is the drive to the airport?")
    m += [{"role": "assistant", "content": None, "tool_calls": [{"id": "r1", "type": "function", "function": {"name": "get_route", "arguments": "{}"}}]},
          {"role": "tool", "tool_call_id": "r1", "content": json.dumps(route)}]
    out["constraint-units-profile"] = {"messages": m, "profile": {"units": "metric"},
                                       "draft": "The drive is about 12 miles and takes 25 minutes.",
                                       "expect": {"defect": "constraint", "contains": ["km"], "absent": ["miles"]}}
    out["constraint-units-stated"] = {"messages": chat("I'm in Berlin, please use metric units. How tall is the Empire State Building?"),
                                      "draft": "It is 1,454 feet tall including its antenna.",
                                      "expect": {"defect": "constraint", "contains": [" m "], "absent": ["feet"]}}
    out["constraint-units-imperial"] = {"messages": chat("How far is the beach from the hotel?"), "profile": {"units": "imperial"},
                                        "draft": "The beach is 5 km from the hotel.",
                                        "expect": {"defect": "constraint", "contains": ["miles"], "absent": ["km"]}}
    m, t = tool_dialogue("order")
    out["constraint-name"] = {"messages": m, "tools": t, "profile": {"name": "Dana"},
                              "draft": "Hi Daniel, your order A1234 has shipped with UPS and should arrive on March 14.",
                              "expect": {"defect": "constraint", "contains": ["Dana"], "absent": ["Daniel"]}}
    m, t = tool_dialogue("ticket")
    out["constraint-formal"] = {"messages": m, "tools": t, "profile": {"tone": "formal"},
                                "draft": "Hey! Yeah, ticket T-50912 has been escalated to Billing 👍",
                                "expect": {"defect": "constraint", "absent": ["Hey", "Yeah", "👍"]}}
    food = {"results": [{"name": "Green Leaf", "cuisine": "vegetarian", "distance_m": 400},
                        {"name": "Bruno's Grill", "cuisine": "steakhouse", "distance_m": 200}]}
    m = chat("Where should I eat tonight near the hotel?")
    m += [{"role": "assistant", "content": None, "tool_calls": [{"id": "f1", "type": "function", "function": {"name": "find_restaurants", "arguments": "{}"}}]},
          {"role": "tool", "tool_call_id": "f1", "content": json.dumps(food)}]
    out["constraint-vegetarian"] = {"messages": m, "profile": {"constraints": ["vegetarian"]},
                                    "draft": "Try Bruno's Grill, 200 m away - their ribeye steak is excellent.",
                                    "expect": {"defect": "constraint", "contains": ["Green Leaf"], "absent": ["steak"]}}
    hotels = {"results": [{"name": "Casa Sol", "price_per_night": 89.0}, {"name": "Gran Via Suites", "price_per_night": 140.0}]}
    m = chat("My budget is at most $100 a night. Which hotel do you suggest in Madrid?")
    m += [{"role": "assistant", "content": None, "tool_calls": [{"id": "h1", "type": "function", "function": {"name": "search_hotels", "arguments": "{}"}}]},
          {"role": "tool", "tool_call_id": "h1", "content": json.dumps(hotels)}]
    out["constraint-budget"] = {"messages": m, "draft": "I'd suggest Gran Via Suites at $140.00 a night - great location.",
                                "expect": {"defect": "constraint", "contains": ["Casa Sol"], "absent": ["Gran Via"]}}
    m, t = tool_dialogue("order")
    out["constraint-language"] = {"messages": m, "tools": t, "profile": {"language": "French"},
                                  "draft": "Your order A1234 has shipped with UPS and should arrive on March 14.",
                                  "expect": {"defect": "constraint", "any": ["votre", "commande", "expédiée"], "absent": ["Your order"]}}
    m, t = tool_dialogue("rental")
    out["constraint-concise"] = {"messages": m, "tools": t, "profile": {"tone": "concise"},
                                 "draft": ("Thank you so much for reaching out to us today about your rental. I have looked into it in detail "
                                           "and I am very happy to confirm that rental CR-7781 is confirmed: a Toyota Corolla, pickup on "
                                           "August 14 at 10:00, for 4 days at $39.00 a day, which comes to $156.00 in total. If there is "
                                           "anything else at all that I can help you with, please do not hesitate to let me know, as we are "
                                           "always here for you."),
                                 "expect": {"defect": "constraint", "contains": ["CR-7781"], "max_words": 60}}
    flights = {"flights": [{"flight": "IB 3101", "departs": "07:15"}, {"flight": "IB 3105", "departs": "11:40"}]}
    m = chat("I can't fly before 10am. What flights are there to Madrid tomorrow?")
    m += [{"role": "assistant", "content": None, "tool_calls": [{"id": "fl", "type": "function", "function": {"name": "search_flights", "arguments": "{}"}}]},
          {"role": "tool", "tool_call_id": "fl", "content": json.dumps(flights)}]
    out["constraint-early-flight"] = {"messages": m, "draft": "The best option is IB 3101, departing at 07:15.",
                                      "expect": {"defect": "constraint", "contains": ["IB 3105"], "absent": ["07:15"]}}

    # Unanswered questions.
    unanswered = [
        ("order", "When will my order arrive?", "Your order A1234 has shipped with UPS.", {"contains": ["March 14"]}),
        ("refund", "How much will I get back for order B5521?", "Refund RF-2207 for order B5521 is processing.", {"contains": ["64"]}),
        ("ticket", "What's the status of ticket T-50912?", "Thanks for reaching out about ticket T-50912; our Billing team has it.",
         {"contains": ["escalated"]}),
        ("appointment", "What time is my appointment?", "Your appointment is with Dr. Okafor at Northside Clinic.",
         {"any": ["9:30", "09:30"]}),
        ("subscription", "When does my plan renew?", "You're on the Pro plan with 5 seats.", {"contains": ["July 1"]}),
        ("flight", "Which seat do I have on LH 401?", "Your booking QX7P2L is confirmed.", {"contains": ["23A"]}),
        ("rental", "How much is the total for the rental?", "Your Toyota Corolla is reserved for pickup on August 14 at 10:00.",
         {"contains": ["156"]}),
    ]
    for name, q, draft, expect in unanswered:
        m, t = tool_dialogue(name, question=q)
        out[f"unanswered-{name}"] = {"messages": m, "tools": t, "draft": draft, "expect": {"defect": "unanswered", **expect}}
    out["unanswered-dog"] = {"messages": chat("Book me on the 09:10 train to Leeds.", "Done: your 09:10 train to Leeds is booked, ticket TL-4410.",
                                              "Can I bring my dog, and does it cost extra?"),
                             "draft": "Trains to Leeds leave every 30 minutes from platform 4.",
                             "expect": {"defect": "unanswered", "contains": ["dog"]}}

    # Contradictions of an earlier assistant turn.
    contradictions = [
        ("refund-amount", ["What's my refund?", "Your refund of $30.00 will be issued on May 3.", "Ok, and when exactly?"],
         "The refund of $35.00 will be issued on May 3.", {"contains": ["$30.00"], "absent": ["$35.00"]}),
        ("table-time", ["Book a table for 4 on Friday evening.", "Your table for 4 is booked at 7:30 pm on Friday.",
                        "Great, can you confirm the time?"],
         "Sure - your table is booked for 8:30 pm on Friday.", {"contains": ["7:30 pm"], "absent": ["8:30"]}),
        ("pin-date", ["I need a new PIN.", "Done - your new PIN will arrive by post on June 12.", "When will the PIN arrive again?"],
         "It should arrive by post on June 21.", {"contains": ["June 12"], "absent": ["June 21"]}),
        ("seat", ["Can I get a window seat?", "I've reserved seat 14C for you.", "Thanks! Which seat was it?"],
         "You're all set in seat 41C.", {"contains": ["14C"], "absent": ["41C"]}),
        ("case-id", ["I want to complain about a late delivery.", "I'm sorry. Your case number is CS-20418.",
                     "What was my case number?"],
         "Your case number is CS-24018.", {"contains": ["CS-20418"], "absent": ["CS-24018"]}),
        ("repair-cost", ["How much is the repair?", "The repair will cost $180 including parts.", "Ok go ahead."],
         "Great, I've scheduled the repair; the cost will be $150 including parts.", {"contains": ["$180"], "absent": ["$150"]}),
        ("package-status", ["Where's my package?", "Your package is out for delivery.", "So it arrives today?"],
         "Your package has not shipped yet, so it won't arrive today.", {"contains": ["out for delivery"], "absent": ["not shipped"]}),
    ]
    for key, turns, draft, expect in contradictions:
        out[f"contradiction-{key}"] = {"messages": chat(*turns), "draft": draft, "expect": {"defect": "contradiction", **expect}}
    m, t = tool_dialogue("order", history=chat("What did my order cost?", "Your order A1234 came to $42.50."),
                         question="And has it shipped?")
    out["contradiction-with-tool"] = {"messages": m, "tools": t,
                                      "draft": "Yes, order A1234 has shipped; as a reminder it came to $24.50.",
                                      "expect": {"defect": "contradiction", "contains": ["$42.50"], "absent": ["$24.50"]}}
    for key, case in out.items():
        case.setdefault("expect", {"defect": "none"})
    return out


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for old in OUT.glob("*.json"):
        old.unlink()
    made = cases()
    for key, case in made.items():
        (OUT / f"{key}.json").write_text(json.dumps(case, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {len(made)} cases to {OUT}")


if __name__ == "__main__":
    main()
