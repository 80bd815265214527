"""Users read and delete their persona profile through the SDK; learned profiles are applied."""
import asyncio

from middleware import Rein
from middleware.models import ScriptedModel


def test_profile_read_and_forget_through_the_sdk(tmp_path):
    db = str(tmp_path / "personas.db")
    rein = Rein(policy="structural", model=ScriptedModel(["ok"], cycle=True), personas=db)
    asyncio.run(rein.engine.personas.put("ana", {"name": "Ana", "units": "metric"}))
    assert rein.profile("ana") == {"name": "Ana", "units": "metric"}
    # A second Rein on the same file sees the same profile: it persists across sessions.
    again = Rein(policy="structural", model=ScriptedModel(["ok"]), personas=db)
    assert again.profile("ana")["units"] == "metric"
    assert rein.forget("ana") is True
    assert again.profile("ana") is None
    assert rein.forget("ana") is False


def test_no_store_means_no_profile():
    rein = Rein(policy="structural", model=ScriptedModel(["ok"]))
    assert rein.profile("ana") is None and rein.forget("ana") is False
