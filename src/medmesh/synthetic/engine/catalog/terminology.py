"""Codings the resources carry (LOINC, UCUM, SNOMED CT, ICD-10-CM, RxNorm, CVX, HL7 code
systems), built once as the dicts that go into resources.

These dicts are shared by reference by every resource that uses them — that is what keeps the
engine fast. Nothing may mutate them: writers only serialize resources, and code that needs a
changed resource copies it first.
"""

from __future__ import annotations

from typing import Any

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CVX = "http://hl7.org/fhir/sid/cvx"

#: meta.tag on every generated resource: HL7's "test health data" (v3 ActReason HTEST).
SYNTHETIC_TAG: dict[str, str] = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
    "code": "HTEST",
    "display": "test health data",
}
META: dict[str, Any] = {"tag": [SYNTHETIC_TAG]}

Json = dict[str, Any]


def concept(system: str, code: str, display: str) -> Json:
    """A CodeableConcept with one coding and the display as text."""
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def _category(code: str, display: str) -> list[Json]:
    system = "http://terminology.hl7.org/CodeSystem/observation-category"
    return [{"coding": [{"system": system, "code": code, "display": display}]}]


VITAL_SIGNS = _category("vital-signs", "Vital Signs")
LABORATORY = _category("laboratory", "Laboratory")


def loinc(code: str, display: str) -> Json:
    """A LOINC CodeableConcept."""
    return concept(LOINC, code, display)


#: name -> (LOINC concept, UCUM unit); values are generated in :mod:`..measurements`.
OBSERVATIONS: dict[str, tuple[Json, str]] = {
    "bp": (loinc("85354-9", "Blood pressure panel with all children optional"), "mm[Hg]"),
    "systolic": (loinc("8480-6", "Systolic blood pressure"), "mm[Hg]"),
    "diastolic": (loinc("8462-4", "Diastolic blood pressure"), "mm[Hg]"),
    "heart_rate": (loinc("8867-4", "Heart rate"), "/min"),
    "respiratory_rate": (loinc("9279-1", "Respiratory rate"), "/min"),
    "temperature": (loinc("8310-5", "Body temperature"), "Cel"),
    "spo2": (loinc("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry"), "%"),
    "height": (loinc("8302-2", "Body height"), "cm"),
    "weight": (loinc("29463-7", "Body weight"), "kg"),
    "bmi": (loinc("39156-5", "Body mass index (BMI) [Ratio]"), "kg/m2"),
    "head": (loinc("9843-4", "Head Occipital-frontal circumference"), "cm"),
    "hba1c": (loinc("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood"), "%"),
    "glucose": (loinc("2345-7", "Glucose [Mass/volume] in Serum or Plasma"), "mg/dL"),
    "cholesterol": (loinc("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma"), "mg/dL"),
    "hdl": (loinc("2085-9", "Cholesterol in HDL [Mass/volume] in Serum or Plasma"), "mg/dL"),
    "ldl": (
        loinc("13457-7", "Cholesterol in LDL [Mass/volume] in Serum or Plasma by calculation"),
        "mg/dL",
    ),
    "triglycerides": (loinc("2571-8", "Triglyceride [Mass/volume] in Serum or Plasma"), "mg/dL"),
    "creatinine": (loinc("2160-0", "Creatinine [Mass/volume] in Serum or Plasma"), "mg/dL"),
    "egfr": (
        loinc(
            "98979-8",
            "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum, Plasma "
            "or Blood by Creatinine-based formula (CKD-EPI 2021)",
        ),
        "mL/min/{1.73_m2}",
    ),
}

LIPID_PANEL = loinc("57698-3", "Lipid panel with direct LDL - Serum or Plasma")
METABOLIC_PANEL = loinc("51990-0", "Basic metabolic panel - Blood")
LAB_SERVICE = [
    {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/v2-0074",
                "code": "LAB",
                "display": "Laboratory",
            }
        ]
    }
]


def snomed(code: str, display: str) -> Json:
    """A SNOMED CT CodeableConcept."""
    return concept(SNOMED, code, display)


_ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
AMBULATORY = {"system": _ACT, "code": "AMB", "display": "ambulatory"}
EMERGENCY = {"system": _ACT, "code": "EMER", "display": "emergency"}

#: encounter kind -> (class coding, [type concept])
ENCOUNTER_TYPES: dict[str, tuple[Json, list[Json]]] = {
    "well_child": (AMBULATORY, [snomed("410620009", "Well child visit (procedure)")]),
    "wellness": (AMBULATORY, [snomed("162673000", "General examination of patient (procedure)")]),
    "follow_up": (AMBULATORY, [snomed("390906007", "Follow-up encounter (procedure)")]),
    "problem": (AMBULATORY, [snomed("185347001", "Encounter for problem (procedure)")]),
    "emergency": (EMERGENCY, [snomed("50849002", "Emergency room admission (procedure)")]),
}

PROCEDURES: dict[str, Json] = {
    "depression_screening": snomed("171207006", "Depression screening (procedure)"),
    "medication_reconciliation": snomed("430193006", "Medication reconciliation (procedure)"),
    "mammography": snomed("71651007", "Mammography (procedure)"),
    "colonoscopy": snomed("73761001", "Colonoscopy (procedure)"),
    "ecg": snomed("29303009", "Electrocardiographic procedure (procedure)"),
    "spirometry": snomed("127783003", "Spirometry (procedure)"),
}


def cvx(code: str, display: str) -> Json:
    """A CVX CodeableConcept."""
    return concept(CVX, code, display)


VACCINES: dict[str, Json] = {
    "hepb": cvx("08", "Hep B, adolescent or pediatric"),
    "rotavirus": cvx("119", "rotavirus, monovalent"),
    "dtap": cvx("20", "DTaP"),
    "hib": cvx("49", "Hib (PRP-OMP)"),
    "pcv13": cvx("133", "Pneumococcal conjugate PCV 13"),
    "ipv": cvx("10", "IPV"),
    "influenza": cvx("140", "Influenza, seasonal, injectable, preservative free"),
    "mmr": cvx("03", "MMR"),
    "varicella": cvx("21", "varicella"),
    "hepa": cvx("83", "Hep A, ped/adol, 2 dose"),
    "tdap": cvx("115", "Tdap"),
    "hpv": cvx("165", "HPV9"),
    "menacwy": cvx("114", "meningococcal MCV4P"),
    "td": cvx("113", "Td (adult) preservative free"),
    "zoster": cvx("187", "zoster recombinant"),
    "ppsv23": cvx("33", "pneumococcal polysaccharide PPV23"),
}

#: CDC child schedule: age in months at the well-child visit -> vaccines given.
CHILD_VACCINES_BY_MONTH: dict[int, tuple[str, ...]] = {
    0: ("hepb",),
    2: ("hepb", "rotavirus", "dtap", "hib", "pcv13", "ipv"),
    4: ("rotavirus", "dtap", "hib", "pcv13", "ipv"),
    6: ("hepb", "dtap", "pcv13", "ipv"),
    12: ("hib", "pcv13", "mmr", "varicella", "hepa"),
    15: ("dtap",),
    18: ("hepa",),
    48: ("dtap", "ipv", "mmr", "varicella"),
    132: ("tdap", "hpv", "menacwy"),
    144: ("hpv",),
    192: ("menacwy",),
}
#: Ages in months of the well-child visits up to 3 years (yearly afterwards).
WELL_CHILD_MONTHS: tuple[int, ...] = (0, 1, 2, 4, 6, 9, 12, 15, 18, 24, 30, 36)

#: substance concept, category, criticality, share of patients, reaction manifestation
ALLERGIES: tuple[tuple[Json, str, str, float, Json], ...] = (
    (
        snomed("764146007", "Penicillin (substance)"),
        "medication",
        "high",
        0.08,
        snomed("247472004", "Wheal (finding)"),
    ),
    (
        snomed("387406002", "Sulfonamide (substance)"),
        "medication",
        "low",
        0.03,
        snomed("271807003", "Eruption of skin (disorder)"),
    ),
    (
        snomed("762952008", "Peanut (substance)"),
        "food",
        "high",
        0.02,
        snomed("39579001", "Anaphylaxis (disorder)"),
    ),
    (
        snomed("44027008", "Seafood (substance)"),
        "food",
        "high",
        0.02,
        snomed("247472004", "Wheal (finding)"),
    ),
    (
        snomed("111088007", "Latex (substance)"),
        "environment",
        "low",
        0.01,
        snomed("271807003", "Eruption of skin (disorder)"),
    ),
    (
        snomed("256277009", "Grass pollen (substance)"),
        "environment",
        "low",
        0.08,
        snomed("61582004", "Allergic rhinitis (disorder)"),
    ),
    (
        snomed("260147004", "House dust mite (organism)"),
        "environment",
        "low",
        0.05,
        snomed("61582004", "Allergic rhinitis (disorder)"),
    ),
    (
        snomed("264287008", "Animal dander (substance)"),
        "environment",
        "low",
        0.04,
        snomed("61582004", "Allergic rhinitis (disorder)"),
    ),
)

#: Reasons for emergency visits: (SNOMED code, display, ICD-10-CM code, display, days to resolve).
ACUTE_PROBLEMS: tuple[tuple[str, str, str, str, int], ...] = (
    ("10509002", "Acute bronchitis", "J20.9", "Acute bronchitis, unspecified", 21),
    ("444814009", "Viral sinusitis", "J01.90", "Acute sinusitis, unspecified", 14),
    (
        "44465007",
        "Sprain of ankle",
        "S93.409A",
        "Sprain of unspecified ligament of unspecified ankle, initial encounter",
        28,
    ),
    (
        "68566005",
        "Urinary tract infectious disease",
        "N39.0",
        "Urinary tract infection, site not specified",
        10,
    ),
    ("29857009", "Chest pain", "R07.9", "Chest pain, unspecified", 2),
    ("21522001", "Abdominal pain", "R10.9", "Unspecified abdominal pain", 3),
    ("195662009", "Acute viral pharyngitis", "J02.9", "Acute pharyngitis, unspecified", 10),
)


def condition_code(snomed_code: tuple[str, str], icd10: tuple[str, str]) -> Json:
    """A Condition.code with the SNOMED CT and the ICD-10-CM codings."""
    return {
        "coding": [
            {"system": SNOMED, "code": snomed_code[0], "display": snomed_code[1]},
            {"system": ICD10CM, "code": icd10[0], "display": icd10[1]},
        ],
        "text": snomed_code[1],
    }


_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
ACTIVE = {"coding": [{"system": _CLINICAL, "code": "active", "display": "Active"}]}
RESOLVED = {"coding": [{"system": _CLINICAL, "code": "resolved", "display": "Resolved"}]}
CONFIRMED = {"coding": [{"system": _VERIFICATION, "code": "confirmed", "display": "Confirmed"}]}
_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
PROBLEM_LIST = [
    {"coding": [{"system": _CATEGORY, "code": "problem-list-item", "display": "Problem List Item"}]}
]
DIAGNOSIS = [
    {
        "coding": [
            {"system": _CATEGORY, "code": "encounter-diagnosis", "display": "Encounter Diagnosis"}
        ]
    }
]

_ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
_ALLERGY_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
ALLERGY_ACTIVE = {"coding": [{"system": _ALLERGY_CLINICAL, "code": "active", "display": "Active"}]}
ALLERGY_CONFIRMED = {
    "coding": [{"system": _ALLERGY_VERIFICATION, "code": "confirmed", "display": "Confirmed"}]
}


def medication(code: str, display: str) -> Json:
    """An RxNorm medicationCodeableConcept."""
    return concept(RXNORM, code, display)
