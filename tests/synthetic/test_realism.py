"""The realism report: prevalence against targets and vital-sign distributions, mergeable
across workers."""

from __future__ import annotations

from datetime import date

import orjson

from medmesh.synthetic.engine import (
    CONDITION_KEYS,
    Cohort,
    GenerationOptions,
    PatientFacts,
    PatientGenerator,
)
from medmesh.synthetic.realism import RealismReport

OPTIONS = GenerationOptions(
    seed=31, size=1500, reference_date=date(2025, 6, 30), cohorts=(Cohort("copd", 100),)
)


def facts() -> list[PatientFacts]:
    generator = PatientGenerator(OPTIONS)
    return [generator.patient(i).facts for i in range(OPTIONS.size)]


FACTS = facts()


def report_of(items: list[PatientFacts]) -> RealismReport:
    report = RealismReport()
    for item in items:
        report.add(item)
    return report


def test_merged_worker_reports_equal_one_report() -> None:
    whole = report_of(FACTS)
    merged = report_of(FACTS[:400])
    for part in (FACTS[400:1000], FACTS[1000:]):
        merged.merge(report_of(part))
    assert orjson.dumps(merged.to_json()) == orjson.dumps(whole.to_json())


def test_the_report_lists_prevalence_per_condition_and_age_band() -> None:
    data = report_of(FACTS).to_json()
    assert data["patients"] == 1500
    assert data["general_population"] == 1400
    assert data["cohort_patients"] == {"copd": 100}
    assert data["tolerance"] == 0.2
    rows = data["prevalence"]
    assert {row["condition"] for row in rows} == set(CONDITION_KEYS)
    hypertension = {row["age_band"]: row for row in rows if row["condition"] == "hypertension"}
    assert set(hypertension) == {"0-17", "18-44", "45-64", "65+"}
    middle = hypertension["45-64"]
    assert middle["patients"] == sum(1 for f in FACTS if f.cohort is None and f.age_band == "45-64")
    assert middle["with_condition"] == sum(
        1
        for f in FACTS
        if f.cohort is None and f.age_band == "45-64" and "hypertension" in f.conditions
    )
    assert 0.25 < middle["target"] < 0.5
    error = abs(middle["observed"] - middle["target"]) / middle["target"]
    assert abs(middle["relative_error"] - error) < 1e-3
    assert middle["within_tolerance"] == (middle["relative_error"] <= 0.2)


def test_small_cells_are_reported_but_not_judged() -> None:
    rows = report_of(FACTS).to_json()["prevalence"]
    afib_young = next(r for r in rows if r["condition"] == "afib" and r["age_band"] == "18-44")
    assert afib_young["assessed"] is False
    obesity = next(r for r in rows if r["condition"] == "obesity" and r["age_band"] == "18-44")
    assert obesity["assessed"] is True


def test_vital_distributions_separate_patients_by_condition() -> None:
    vitals = {(v["measure"], v["group"]): v for v in report_of(FACTS).to_json()["vitals"]}
    high, normal = vitals[("systolic", "hypertension")], vitals[("systolic", "no hypertension")]
    assert high["mean"] > normal["mean"] + 15
    assert high["p5"] <= high["p50"] <= high["p95"]
    assert vitals[("bmi", "obesity")]["p50"] >= 30 > vitals[("bmi", "no obesity")]["p50"]
    assert vitals[("hba1c", "diabetes")]["p50"] >= 6.5 > vitals[("hba1c", "no diabetes")]["p95"]
    assert all(v["count"] > 0 and v["sd"] > 0 for v in vitals.values())


def test_the_text_report_shows_each_condition_and_measure() -> None:
    text = report_of(FACTS).render_text()
    assert text.startswith("Realism report: 1500 patients")
    for key in CONDITION_KEYS:
        assert f"  {key} " in text
    for measure in ("systolic", "diastolic", "bmi", "hba1c"):
        assert f"  {measure} " in text


def test_an_empty_report_renders() -> None:
    report = RealismReport()
    assert report.to_json()["patients"] == 0
    assert "0 patients" in report.render_text()
