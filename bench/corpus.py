"""Tracking questions customers actually ask, as the bench sends them.

``CORE`` holds the four canonical phrasings; ``VARIANTS`` adds the casual,
terse and polite forms real traffic is full of (the router and the semantic
cache must cope with all of them); ``AWB_TEMPLATES`` name a shipment by its air
waybill number and are used only for customers known to have one.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

CORE: tuple[str, ...] = (
    "where is my order?",
    "when will my package arrive?",
    "can I see the delivery photo?",
    "has my order shipped yet?",
)

VARIANTS: tuple[str, ...] = (
    "Where is my order",
    "where's my order??",
    "wheres my package",
    "Hi, could you tell me where my order is right now?",
    "my order hasn't shown up yet, where is it?",
    "When will my package arrive?",
    "when is my delivery coming",
    "what's the ETA on my parcel?",
    "is my package arriving today?",
    "Any update on when my order gets here?",
    "Can I see the delivery photo?",
    "the app says delivered but I can't find it - is there a photo?",
    "where exactly was my parcel left?",
    "has my order shipped?",
    "is my order out for delivery?",
    "why is my package late?",
    "hello, I'd like a status update on my order please",
    "track my order",
)

AWB_TEMPLATES: tuple[str, ...] = (
    "track {awb}",
    "Track {awb} please",
    "where is {awb}?",
    "what's the status of shipment {awb}?",
    "when will {awb} be delivered?",
    "can I see the delivery photo for {awb}?",
    "{awb} still hasn't arrived, where is it?",
)


POLICY: tuple[str, ...] = (
    "What is the return window for electronics?",
    "How long do I have to return an item?",
    "Can I return SKU-9942-B after three weeks?",
    "Do I have a right of withdrawal in the EU?",
    "How long do refunds take to reach my card?",
    "What does express delivery cost?",
    "Which items cannot be returned?",
    "Is there a restocking fee on opened headphones?",
    "How do exchanges work?",
    "What is the warranty on electronics?",
    "Do gold members get longer to return things?",
    "What is your holiday return extension?",
)
"""Policy questions (return windows, fees, refunds, delivery options) the router sends to
the policy worker; none is from the golden set the retrieval evaluation reports on."""


NEGOTIATION: tuple[str, ...] = (
    "My parcel {awb} shows as delivered but I never received it",
    "I want a refund for {awb}",
    "{awb} arrived damaged, can I get my money back?",
    "the wrong item came in {awb}, please refund me",
    "{awb} never turned up, I'd like a refund",
)
"""Refund and dispute requests naming one of the customer's shipments (``{awb}``)."""


def pick(rng: random.Random, phrasings: Sequence[str], awbs: Sequence[str] = ()) -> str:
    """One question: from ``phrasings``, or (when ``awbs`` is not empty and the
    draw says so) one naming a random AWB of the customer.

    The draw always consumes the same RNG calls for the same inputs, so a seeded
    run repeats its exact question sequence.
    """
    if awbs and rng.random() < 0.35:
        return rng.choice(AWB_TEMPLATES).format(awb=rng.choice(awbs))
    return rng.choice(phrasings)
