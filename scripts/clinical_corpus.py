"""Deterministic synthetic pediatric clinical sentences (20-40 words) for benchmarks. No real data."""
import random, sys

AGES = ["3-month-old", "9-month-old", "18-month-old", "two-year-old", "four-year-old", "six-year-old",
        "eight-year-old", "ten-year-old", "twelve-year-old", "fifteen-year-old", "newborn", "adolescent"]
WHO = ["boy", "girl", "infant", "patient", "child", "toddler"]
COMPLAINTS = ["fever and cough", "vomiting and diarrhea", "wheezing and shortness of breath", "ear pain and irritability",
              "rash on the trunk", "abdominal pain in the right lower quadrant", "poor feeding and lethargy",
              "sore throat and swollen tonsils", "headache and neck stiffness", "limping and knee swelling",
              "persistent nocturnal cough", "jaundice on day three"]
FINDINGS = ["temperature 39.2 C", "oxygen saturation 94 percent on room air", "mild dehydration", "bulging tympanic membrane",
            "diffuse expiratory wheeze", "tender McBurney point", "capillary refill under two seconds",
            "vesicular rash in different stages", "bilirubin 15 mg/dL", "positive rapid strep test",
            "clear lungs bilaterally", "normal neurological examination"]
PLANS = ["started amoxicillin 90 mg/kg/day for 10 days", "oral rehydration advised and return precautions given",
         "albuterol nebulizer and oral dexamethasone administered", "ultrasound ordered to rule out appendicitis",
         "admitted for intravenous fluids and observation", "phototherapy started with repeat bilirubin in 12 hours",
         "supportive care with nasal suction and follow-up in 48 hours", "referred to pediatric cardiology",
         "penicillin V prescribed and school note provided", "blood cultures drawn and ceftriaxone given"]
HIST = ["history of asthma", "no known drug allergies", "immunizations up to date", "born at 36 weeks",
        "sibling with similar symptoms", "recent travel abroad", "peanut allergy", "type 1 diabetes on insulin pump"]

def sentence(r):
    parts = [f"{r.choice(AGES).capitalize()} {r.choice(WHO)} presenting with {r.choice(COMPLAINTS)} for {r.randint(1, 14)} days,",
             f"{r.choice(HIST)};", f"exam shows {r.choice(FINDINGS)} and {r.choice(FINDINGS)};", f"{r.choice(PLANS)}."]
    s = " ".join(parts)
    while len(s.split()) < 20:
        s += f" Also {r.choice(HIST)}."
    words = s.split()
    return " ".join(words[:40])

if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
    r = random.Random(20261126)
    for _ in range(n):
        print(sentence(r))
