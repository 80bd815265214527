"""What a turn's state says about rein's own cost."""
from inception.base import Diagnosis
from middleware.state import rein_model_calls
from refiners.base import RefinePlan, Refinement


def test_rein_model_calls_count_the_plan_once():
    plan = RefinePlan(refiners=["persona"], model_calls=1)
    refined = Refinement(draft="a", final="b", model_calls=3)  # 1 planner call + 2 refiner calls
    assert rein_model_calls({"diagnosis": Diagnosis(model_calls=1), "plan": plan, "refinement": refined}) == 4
    assert rein_model_calls({"diagnosis": Diagnosis(model_calls=1), "plan": plan}) == 2
    assert rein_model_calls({}) == 0
