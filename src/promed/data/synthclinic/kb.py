"""SynthClinic knowledge base: diseases, findings, priors and P(finding | disease). Pure data, written by us.

Length: the tables themselves (one row per disease and finding); there is no logic to split off.

The model behind every SynthClinic case (see ``generator.py`` for the sampling story, ``posterior.py`` for the
exact posterior):

* demographics: sex (female / male, 1:1) and an age band (``AGE_BANDS``, probabilities ``AGE_BAND_PROBS``);
* disease prior ``P(d | band, sex) ∝ prior_d * age_d[band] * sex_d[sex]``;
* findings are **conditionally independent given the disease** (naive Bayes): each finding ``f`` is present with
  probability ``P(f | d)``, which is the disease's listed value or, when the disease does not list ``f``, the
  finding's background rate ``base``. This makes the posterior over diseases exact and cheap.
* a chief complaint is one of the findings marked with a ``complaint`` phrase; ``P(cc = c | d) ∝ P(c | d)``.

Fact templates use ``{She}``, ``{she}``, ``{Her}``, ``{her}`` (possessive), filled in by sex. Questions are
patient-directed and share the key words of the fact text so that a sentence-embedding retriever matches them.
Findings with ``sex="female"`` are never documented for men. The numbers are made up for a test bench; they are
clinically flavoured but are not medical advice.
"""

from __future__ import annotations

from dataclasses import dataclass

CATEGORIES = ("history", "symptom", "exam", "lab")
AGE_BANDS = (("young", 18, 39), ("middle", 40, 64), ("old", 65, 89))
AGE_BAND_PROBS = (0.35, 0.35, 0.30)
SEXES = ("female", "male")


@dataclass(frozen=True)
class FindingSpec:
    """One finding: code, category, fact templates (present / absent), the question that targets it,
    its background rate ``base`` (P(present) for diseases that do not list it), an optional chief-complaint phrase
    and an optional sex restriction."""

    code: str
    category: str
    present: str
    absent: str
    question: str
    base: float = 0.05
    complaint: str | None = None
    sex: str | None = None


@dataclass(frozen=True)
class DiseaseSpec:
    """One disease: code, display name, specialty, relative prior, age-band multipliers (young, middle, old),
    sex multipliers (female, male) and its listed P(finding | disease) values as (code, p) pairs."""

    code: str
    name: str
    specialty: str
    prior: float
    age: tuple[float, float, float]
    sex: tuple[float, float]
    lik: tuple[tuple[str, float], ...]


def _p(**kw: float) -> tuple[tuple[str, float], ...]:
    return tuple(kw.items())


def _s(code, present, absent, question, base=0.05, complaint=None, sex=None):
    return FindingSpec(code, "symptom", present, absent, question, base, complaint, sex)


def _h(code, present, absent, question, base=0.05, sex=None):
    return FindingSpec(code, "history", present, absent, question, base, None, sex)


def _e(code, present, absent, question, base=0.04, sex=None):
    return FindingSpec(code, "exam", present, absent, question, base, None, sex)


def _l(code, present, absent, question, base=0.04, sex=None):
    return FindingSpec(code, "lab", present, absent, question, base, None, sex)


FINDINGS: tuple[FindingSpec, ...] = (
    # ---- symptoms (chief complaints carry a phrase) ----
    _s("chest_pain", "{She} reports chest pain.", "{She} denies chest pain.", "Do you have any chest pain?",
       0.04, "chest pain"),
    _s("pleuritic_pain", "{She} reports sharp chest pain that worsens with deep breathing.",
       "{Her} pain does not worsen with deep breathing.", "Is the pain worse when you take a deep breath?", 0.03),
    _s("radiating_arm_pain", "{She} describes pressure-like pain radiating to the left arm and jaw.",
       "The pain does not radiate to the arm or jaw.", "Does the pain spread to your arm or jaw?", 0.02),
    _s("tearing_back_pain", "{She} describes a sudden tearing pain that radiates to the back.",
       "{She} denies any tearing pain radiating to the back.", "Does the pain feel like tearing and go through to your back?", 0.01),
    _s("exertional_pain", "The chest discomfort comes on with exertion and resolves with rest.",
       "The chest discomfort is not brought on by exertion.", "Does the discomfort come on with exertion and go away with rest?", 0.03),
    _s("positional_relief", "The pain improves when {she} sits up and leans forward.",
       "Sitting up and leaning forward does not relieve the pain.", "Does sitting up and leaning forward make the pain better?", 0.02),
    _s("diaphoresis", "{She} has been sweating profusely.", "{She} denies sweating.", "Have you been sweating heavily?", 0.05),
    _s("dyspnea", "{She} reports shortness of breath.", "{She} denies shortness of breath.", "Are you short of breath?",
       0.05, "shortness of breath"),
    _s("orthopnea", "{She} needs three pillows to breathe comfortably at night.",
       "{She} can lie flat without difficulty breathing.", "Do you get short of breath when lying flat?", 0.02),
    _s("pnd", "{She} wakes up at night gasping for air.", "{She} denies waking at night gasping for air.",
       "Do you wake up at night gasping for air?", 0.02),
    _s("palpitations", "{She} reports episodes of a racing, pounding heartbeat.", "{She} denies palpitations.",
       "Have you noticed your heart racing or pounding?", 0.04, "palpitations"),
    _s("syncope", "{She} fainted briefly earlier today.", "{She} denies any fainting.", "Have you fainted or passed out?",
       0.02, "a fainting episode"),
    _s("cough", "{She} has a cough.", "{She} denies cough.", "Do you have a cough?", 0.08, "cough"),
    _s("productive_sputum", "{She} is coughing up yellow-green sputum.", "{She} is not coughing up any sputum.",
       "Are you coughing up any phlegm or sputum?", 0.05),
    _s("hemoptysis", "{She} has coughed up blood.", "{She} denies coughing up blood.", "Have you coughed up any blood?",
       0.01, "coughing up blood"),
    _s("fever", "{She} reports a fever for the past three days.", "{She} denies any fever.", "Have you had a fever?",
       0.06, "fever"),
    _s("chills", "{She} reports shaking chills.", "{She} denies chills.", "Have you had shaking chills?", 0.04),
    _s("night_sweats", "{She} reports drenching night sweats.", "{She} denies night sweats.", "Have you had night sweats?", 0.03),
    _s("weight_loss", "{She} has lost 8 kg over the past three months without trying.", "{She} reports no recent weight loss.",
       "Have you lost weight without trying?", 0.04, "unintentional weight loss"),
    _s("fatigue", "{She} reports feeling tired all the time for several weeks.", "{She} denies fatigue.",
       "Have you been feeling unusually tired?", 0.10, "fatigue"),
    _s("headache", "{She} reports a headache.", "{She} denies headache.", "Do you have a headache?", 0.06, "headache"),
    _s("thunderclap", "The headache began suddenly and reached maximal intensity within a minute.",
       "The headache came on gradually.", "Did the headache come on suddenly, like a thunderclap?", 0.02),
    _s("unilateral_throbbing", "The headache is throbbing and on one side of the head.",
       "The headache is neither throbbing nor one-sided.", "Is the headache throbbing and on one side of your head?", 0.02),
    _s("band_headache", "The headache feels like a tight band around the head.",
       "The headache does not feel like a band around the head.", "Does the headache feel like a tight band around your head?", 0.02),
    _s("photophobia", "Bright light makes {her} symptoms worse.", "{She} has no sensitivity to bright light.",
       "Does bright light bother you?", 0.03),
    _s("aura", "Before the headache {she} saw flashing zigzag lights.", "{She} denies seeing flashing lights before the headache.",
       "Did you see flashing lights or zigzag lines before the headache?", 0.01),
    _s("nausea", "{She} reports nausea.", "{She} denies nausea.", "Do you feel nauseated?", 0.08),
    _s("vomiting", "{She} has vomited several times.", "{She} denies vomiting.", "Have you been vomiting?", 0.05, "vomiting"),
    _s("diarrhea", "{She} reports frequent watery diarrhea.", "{She} denies diarrhea.", "Have you had diarrhea?",
       0.05, "diarrhea"),
    _s("obstipation", "{She} has not passed stool or gas for two days.", "{She} is passing stool and gas normally.",
       "Have you been able to pass stool or gas?", 0.02),
    _s("constipation", "{She} reports passing hard stools only twice a week.", "{She} denies constipation.",
       "Have you been constipated?", 0.06),
    _s("abdominal_pain", "{She} reports abdominal pain.", "{She} denies abdominal pain.", "Do you have any abdominal pain?",
       0.05, "abdominal pain"),
    _s("epigastric_back_pain", "The pain is in the upper abdomen and radiates straight through to the back.",
       "The abdominal pain does not radiate to the back.", "Does the stomach pain go straight through to your back?", 0.02),
    _s("ruq_fatty_meal", "The pain is in the right upper abdomen and began after a fatty meal.",
       "The pain is not in the right upper abdomen after fatty meals.", "Did the pain in your upper right belly start after a fatty meal?", 0.02),
    _s("pain_migration", "The pain began around the umbilicus and moved to the right lower abdomen.",
       "The pain has not moved from the umbilicus to the right lower abdomen.",
       "Did the pain start around your belly button and move to the lower right?", 0.02),
    _s("llq_pain", "The pain is located in the left lower abdomen.", "There is no pain in the left lower abdomen.",
       "Is the pain in your lower left abdomen?", 0.03),
    _s("burning_relieved_meals", "{She} describes burning upper abdominal pain that improves with meals.",
       "Eating does not relieve the upper abdominal burning.", "Does eating make the burning stomach pain better?", 0.03),
    _s("heartburn", "{She} reports heartburn after meals and when lying down.", "{She} denies heartburn.",
       "Do you get heartburn?", 0.08, "heartburn"),
    _s("melena", "{She} has noticed black, tarry stools.", "{She} denies black or tarry stools.",
       "Have your stools been black or tarry?", 0.01),
    _s("dark_urine", "{She} has noticed dark, tea-colored urine.", "{Her} urine is a normal color.",
       "Has your urine been dark, like tea?", 0.02),
    _s("flank_pain", "{She} reports pain in the flank.", "{She} denies flank pain.", "Do you have pain in your side or flank?",
       0.03, "flank pain"),
    _s("colicky_groin_pain", "The pain comes in severe waves and radiates to the groin.",
       "The pain does not come in waves or radiate to the groin.", "Does the pain come in waves and spread to your groin?", 0.02),
    _s("dysuria", "{She} reports burning on urination.", "{She} denies burning on urination.", "Does it burn when you urinate?",
       0.04, "painful urination"),
    _s("urinary_frequency", "{She} reports urinating much more often than usual.", "{She} denies urinating more often than usual.",
       "Are you urinating more often than usual?", 0.05),
    _s("polydipsia", "{She} has been extremely thirsty and passing large volumes of urine.", "{She} denies excessive thirst.",
       "Have you been very thirsty and passing lots of urine?", 0.03),
    _s("pelvic_pain", "{She} reports pelvic pain.", "{She} denies pelvic pain.", "Do you have pain in your pelvis?",
       0.03, "pelvic pain", "female"),
    _s("missed_period", "{Her} last menstrual period was seven weeks ago.", "{Her} menstrual periods have been regular.",
       "When was your last menstrual period?", 0.05, None, "female"),
    _s("vaginal_bleeding", "{She} reports light vaginal bleeding.", "{She} denies vaginal bleeding.",
       "Have you had any vaginal bleeding?", 0.04, None, "female"),
    _s("vaginal_discharge", "{She} reports a foul-smelling vaginal discharge.", "{She} denies abnormal vaginal discharge.",
       "Have you noticed any unusual vaginal discharge?", 0.05, None, "female"),
    _s("heavy_menses", "{She} reports heavy menstrual periods.", "{Her} menstrual periods are of normal volume.",
       "Are your menstrual periods heavy?", 0.10, None, "female"),
    _s("joint_pain", "{She} reports joint pain.", "{She} denies joint pain.", "Do you have pain in your joints?",
       0.06, "joint pain"),
    _s("morning_stiffness", "{She} has morning stiffness in the hands lasting over an hour.", "{She} denies morning stiffness.",
       "Are your joints stiff in the morning?", 0.04),
    _s("sudden_joint_onset", "The joint pain began suddenly overnight.", "The joint pain came on gradually.",
       "Did the joint pain start suddenly overnight?", 0.02),
    _s("photosensitivity", "{She} gets a rash after sun exposure.", "{She} does not get rashes after sun exposure.",
       "Do you get a rash after being in the sun?", 0.03),
    _s("oral_ulcers", "{She} has painless sores in the mouth.", "{She} denies sores in the mouth.",
       "Do you have any sores in your mouth?", 0.03),
    _s("sore_throat", "{She} reports a sore throat.", "{She} denies a sore throat.", "Do you have a sore throat?",
       0.05, "sore throat"),
    _s("cold_intolerance", "{She} always feels cold when others are comfortable.", "{She} tolerates cold normally.",
       "Do you feel cold when others are comfortable?", 0.04),
    _s("heat_intolerance", "{She} feels hot and sweaty when others are comfortable.", "{She} tolerates heat normally.",
       "Do you feel too hot when others are comfortable?", 0.03),
    _s("weight_gain", "{She} has gained 5 kg despite eating less.", "{Her} weight has been stable.",
       "Have you gained weight recently?", 0.06),
    _s("tremor", "{She} has noticed a fine tremor of the hands.", "{She} denies any tremor of the hands.",
       "Do your hands shake or tremble?", 0.03),
    _s("hemiparesis", "{She} has sudden weakness of the right arm and leg.", "{She} denies weakness on one side of the body.",
       "Do you have weakness on one side of your body?", 0.01, "weakness on one side of the body"),
    _s("ascending_weakness", "{Her} weakness started in the feet and has climbed up both legs.",
       "{She} denies weakness in the legs.", "Has weakness started in your feet and moved up your legs?", 0.01,
       "weakness in both legs"),
    _s("slurred_speech", "{Her} speech is slurred.", "{Her} speech is clear.", "Has your speech been slurred?", 0.01),
    _s("confusion", "{Her} family says {she} has been confused.", "{She} is alert and oriented.",
       "Have you been feeling confused?", 0.02, "confusion"),
    _s("tingling", "{She} reports tingling and numbness in the feet.", "{She} denies tingling or numbness.",
       "Do you have any tingling or numbness?", 0.04),
    _s("pica", "{She} has been craving and chewing ice.", "{She} denies unusual food cravings.",
       "Do you crave chewing ice?", 0.02),
    # ---- history ----
    _h("smoker", "{She} has smoked a pack of cigarettes daily for 30 years.", "{She} has never smoked.", "Do you smoke?", 0.20),
    _h("heavy_alcohol", "{She} drinks six to eight beers daily.", "{She} does not drink alcohol.",
       "How much alcohol do you drink?", 0.10),
    _h("gallstone_history", "{She} has a history of gallstones.", "{She} has no history of gallstones.",
       "Have you ever been told you have gallstones?", 0.06),
    _h("hypertension_history", "{She} has long-standing, poorly controlled hypertension.",
       "{She} has no history of high blood pressure.", "Do you have a history of high blood pressure?", 0.20),
    _h("diabetes_history", "{She} has diabetes mellitus treated with insulin.", "{She} has no history of diabetes.",
       "Do you have diabetes?", 0.08),
    _h("prior_mi", "{She} had a heart attack five years ago.", "{She} has never had a heart attack.",
       "Have you ever had a heart attack?", 0.05),
    _h("recent_travel", "{She} returned from a 14-hour flight three days ago.", "{She} has not traveled or been immobile recently.",
       "Have you recently taken a long flight or been immobile?", 0.05),
    _h("recent_surgery", "{She} had knee surgery two weeks ago.", "{She} has not had any recent surgery.",
       "Have you had surgery in the past few weeks?", 0.03),
    _h("oral_contraceptives", "{She} takes oral contraceptive pills.", "{She} does not take oral contraceptive pills.",
       "Do you take birth control pills?", 0.15, "female"),
    _h("asthma_history", "{She} has had asthma and seasonal allergies since childhood.", "{She} has no history of asthma or allergies.",
       "Do you have asthma or allergies?", 0.08),
    _h("recent_uri", "{She} had a cold with a runny nose one week ago.", "{She} has not had a recent cold.",
       "Did you have a cold recently?", 0.08),
    _h("tb_exposure", "{She} recently emigrated from a country where tuberculosis is endemic.",
       "{She} has no known exposure to tuberculosis.", "Have you been exposed to tuberculosis or lived where it is common?", 0.04),
    _h("sick_contacts", "Several people at {her} workplace have similar symptoms.", "No one around {her} has similar symptoms.",
       "Does anyone around you have similar symptoms?", 0.08),
    _h("suspect_food", "{She} ate at a buffet the day before the symptoms started.", "{She} has not eaten any unusual food.",
       "Did you eat anything unusual before you got sick?", 0.06),
    _h("nsaid_use", "{She} takes ibuprofen daily for back pain.", "{She} does not take painkillers regularly.",
       "Do you take ibuprofen or other painkillers regularly?", 0.12),
    _h("prior_stones", "{She} has had kidney stones before.", "{She} has never had kidney stones.",
       "Have you ever had kidney stones?", 0.04),
    _h("new_partner", "{She} has a new sexual partner and does not use condoms.", "{She} is in a long-term monogamous relationship.",
       "Have you had a new sexual partner recently?", 0.08),
    _h("family_migraine", "{Her} mother has migraines.", "No one in {her} family has migraines.",
       "Does anyone in your family have migraines?", 0.10),
    _h("diuretic_use", "{She} takes hydrochlorothiazide, a water pill.", "{She} does not take a water pill.",
       "Do you take a water pill (diuretic)?", 0.08),
    _h("iv_drug_use", "{She} injects heroin.", "{She} denies injecting drugs.", "Do you inject drugs?", 0.02),
    _h("travel_abroad", "{She} returned from a trip to rural Mexico three weeks ago.", "{She} has not traveled abroad recently.",
       "Have you traveled abroad recently?", 0.06),
    _h("prior_abdominal_surgery", "{She} had abdominal surgery years ago.", "{She} has never had abdominal surgery.",
       "Have you ever had surgery on your abdomen?", 0.10),
    _h("similar_episodes", "{She} has had similar episodes in the past.", "This is the first episode of this kind.",
       "Have you had episodes like this before?", 0.15),
    # ---- examination ----
    _e("hypotension", "Blood pressure is 84/50 mm Hg.", "Blood pressure is not low.", "Was your blood pressure low?", 0.03),
    _e("tachycardia", "The pulse is 122/min.", "The pulse rate is normal.", "Was your pulse rate fast?", 0.08),
    _e("irregular_pulse", "The pulse is irregularly irregular.", "The pulse is regular.", "Was your pulse irregular?", 0.03),
    _e("arm_bp_difference", "The systolic blood pressure differs by 30 mm Hg between the arms.",
       "The blood pressure is equal in both arms.", "Was the blood pressure different between your two arms?", 0.02),
    _e("hypoxia", "Oxygen saturation is 88% on room air.", "Oxygen saturation is 98% on room air.",
       "What was your oxygen saturation?", 0.04),
    _e("crackles", "Crackles are heard at both lung bases.", "No crackles are heard over the lungs.",
       "Did the doctor hear crackles in your lungs?", 0.04),
    _e("consolidation", "There is dullness to percussion with bronchial breath sounds over the right lower lobe.",
       "There are no signs of lung consolidation.", "Were there signs of consolidation on the lung examination?", 0.02),
    _e("wheezes", "Diffuse expiratory wheezes are heard.", "No wheezes are heard.", "Were wheezes heard on the lung examination?", 0.04),
    _e("absent_breath_sounds", "Breath sounds are absent over the left chest, which is hyperresonant.",
       "Breath sounds are equal on both sides.", "Were breath sounds absent on one side of the chest?", 0.01),
    _e("jvd", "The jugular veins are distended.", "The jugular veins are not distended.", "Were the veins in your neck distended?", 0.03),
    _e("s3_gallop", "An S3 gallop is heard.", "No extra heart sounds are heard.", "Was an extra heart sound (S3 gallop) heard?", 0.02),
    _e("friction_rub", "A pericardial friction rub is heard.", "No pericardial friction rub is heard.",
       "Was a friction rub heard over the heart?", 0.01),
    _e("diastolic_murmur", "A diastolic murmur is heard at the left sternal border.", "No heart murmur is heard.",
       "Was a heart murmur heard?", 0.03),
    _e("leg_edema", "There is pitting edema of both ankles.", "There is no ankle edema.", "Are your ankles swollen?", 0.06),
    _e("calf_swelling", "The left calf is swollen and tender.", "Both calves are soft and nontender.",
       "Is one of your calves swollen or tender?", 0.02),
    _e("clubbing", "There is clubbing of the fingers.", "There is no clubbing of the fingers.",
       "Did the examination show clubbing of the fingers?", 0.02),
    _e("jaundice", "The skin and sclerae are yellow.", "There is no yellowing of the skin or eyes.",
       "Did the examination show yellowing of your skin or eyes?", 0.02),
    _e("murphy_sign", "Palpation of the right upper abdomen makes {her} stop breathing in (positive Murphy sign).",
       "Murphy sign is negative.", "Did the examination show a positive Murphy sign?", 0.02),
    _e("mcburney_tenderness", "There is tenderness with rebound at McBurney point.", "There is no tenderness at McBurney point.",
       "Was there tenderness at McBurney point in the lower right abdomen?", 0.02),
    _e("epigastric_tenderness", "There is marked tenderness in the epigastrium.", "The epigastrium is not tender.",
       "Was your upper abdomen tender on examination?", 0.04),
    _e("llq_tenderness", "There is tenderness in the left lower quadrant.", "The left lower quadrant is not tender.",
       "Was the lower left abdomen tender on examination?", 0.03),
    _e("distension", "The abdomen is distended with high-pitched bowel sounds.", "The abdomen is not distended.",
       "Was your abdomen distended on examination?", 0.03),
    _e("cva_tenderness", "There is tenderness at the costovertebral angle.", "There is no costovertebral angle tenderness.",
       "Was there tenderness over the kidney area of your back?", 0.03),
    _e("cervical_motion_tenderness", "Pelvic examination shows cervical motion tenderness.",
       "There is no cervical motion tenderness on pelvic examination.",
       "Did the pelvic examination show cervical motion tenderness?", 0.02, "female"),
    _e("adnexal_mass", "A tender adnexal mass is felt on pelvic examination.", "No adnexal mass is felt on pelvic examination.",
       "Did the pelvic examination find a mass near the ovary?", 0.02, "female"),
    _e("nuchal_rigidity", "The neck is stiff on passive flexion.", "The neck is supple.", "Was your neck stiff on examination?", 0.02),
    _e("facial_droop", "There is a droop of the right side of the face.", "There is no facial droop.",
       "Did the examination show a drooping of one side of your face?", 0.01),
    _e("areflexia", "Deep tendon reflexes are absent in both legs.", "Deep tendon reflexes are normal.",
       "What did the examination show for your reflexes?", 0.01),
    _e("goiter", "The thyroid gland is diffusely enlarged.", "The thyroid gland is not enlarged.", "Was your thyroid gland enlarged?", 0.03),
    _e("exophthalmos", "The eyes are bulging.", "There is no bulging of the eyes.", "Did the examination show bulging of your eyes?", 0.01),
    _e("dry_skin", "The skin is dry and coarse and the reflexes relax slowly.", "The skin is of normal texture.",
       "Was your skin dry and coarse?", 0.04),
    _e("kussmaul", "Breathing is deep and rapid with a fruity odor.", "Breathing is unlaboured with no unusual odor.",
       "Was your breathing deep and rapid with a fruity smell?", 0.01),
    _e("dry_mucosa", "The mucous membranes are dry.", "The mucous membranes are moist.", "Were your mucous membranes dry?", 0.05),
    _e("pallor", "The conjunctivae are pale.", "The conjunctivae are pink.", "Did the examination show that you look pale?", 0.05),
    _e("koilonychia", "The fingernails are spoon-shaped.", "The fingernails are normal.", "Are your fingernails spoon-shaped?", 0.01),
    _e("splenomegaly", "The spleen is palpable below the left costal margin.", "The spleen is not palpable.",
       "Was your spleen enlarged on examination?", 0.02),
    _e("posterior_nodes", "There are enlarged lymph nodes at the back of the neck.", "There are no enlarged lymph nodes in the neck.",
       "Were the lymph nodes in your neck swollen?", 0.05),
    _e("tonsillar_exudate", "The tonsils are enlarged with white exudates.", "The tonsils are normal without exudates.",
       "Were there white patches on your tonsils?", 0.02),
    _e("petechial_rash", "There is a petechial rash on the trunk and legs.", "There is no rash on the trunk or legs.",
       "Was there a purple spotted rash on your body?", 0.01),
    _e("malar_rash", "There is a red rash over the cheeks and the bridge of the nose.", "There is no rash on the face.",
       "Is there a red rash across your cheeks and nose?", 0.01),
    _e("hot_swollen_joint", "One joint is red, hot and swollen.", "No joint is red, hot or swollen.",
       "Is one of your joints red, hot and swollen?", 0.02),
    _e("big_toe_swelling", "The base of the big toe is red, hot and exquisitely tender.", "The big toes are normal.",
       "Is the base of your big toe red and swollen?", 0.01),
    _e("symmetric_hand_swelling", "The small joints of both hands are swollen symmetrically.", "The joints of the hands are not swollen.",
       "Are the small joints of both your hands swollen?", 0.02),
    # ---- laboratory and imaging ----
    _l("troponin_high", "Serum troponin is elevated.", "Serum troponin is within normal limits.",
       "What did the lab show for serum troponin?", 0.03),
    _l("st_elevation", "The ECG shows ST-segment elevation in the anterior leads.", "The ECG shows no ST-segment elevation.",
       "Did the ECG show ST-segment elevation?", 0.02),
    _l("diffuse_st_pr", "The ECG shows diffuse ST elevation with PR depression.", "The ECG shows no diffuse ST elevation or PR depression.",
       "Did the ECG show diffuse ST elevation with PR depression?", 0.01),
    _l("ecg_afib", "The ECG shows an irregular rhythm without P waves.", "The ECG shows sinus rhythm.",
       "Did the ECG show an irregular rhythm without P waves?", 0.02),
    _l("d_dimer_high", "Plasma D-dimer is elevated.", "Plasma D-dimer is normal.", "What did the lab show for D-dimer?", 0.12),
    _l("bnp_high", "Serum BNP is markedly elevated.", "Serum BNP is normal.", "What did the lab show for BNP?", 0.05),
    _l("wide_mediastinum", "Chest x-ray shows a widened mediastinum.", "Chest x-ray shows a normal mediastinum.",
       "Did the chest x-ray show a widened mediastinum?", 0.01),
    _l("cxr_infiltrate", "Chest x-ray shows a lobar infiltrate.", "Chest x-ray shows no infiltrate.",
       "Did the chest x-ray show an infiltrate?", 0.04),
    _l("cxr_cavity", "Chest x-ray shows a cavitary lesion in the upper lobe.", "Chest x-ray shows no cavitary lesion.",
       "Did the chest x-ray show a cavity in the upper lobe?", 0.01),
    _l("cxr_mass", "Chest x-ray shows a spiculated lung mass.", "Chest x-ray shows no lung mass.",
       "Did the chest x-ray show a mass in the lung?", 0.01),
    _l("peak_flow_low", "Peak expiratory flow is 45% of predicted.", "Peak expiratory flow is normal.",
       "What was your peak expiratory flow?", 0.04),
    _l("hypercapnia", "Arterial blood gas shows an elevated carbon dioxide level.", "Arterial carbon dioxide is normal.",
       "Did the blood gas show a high carbon dioxide level?", 0.03),
    _l("leukocytosis", "The white blood cell count is elevated.", "The white blood cell count is normal.",
       "What did the lab show for the white blood cell count?", 0.12),
    _l("lipase_high", "Serum lipase is markedly elevated.", "Serum lipase is within normal limits.",
       "What did the lab show for serum lipase?", 0.03),
    _l("alt_high", "Serum ALT is markedly elevated.", "Serum ALT is within normal limits.",
       "What did the lab show for the liver enzyme ALT?", 0.05),
    _l("hepatitis_a_igm", "Hepatitis A IgM antibody is positive.", "Hepatitis A IgM antibody is negative.",
       "What did the hepatitis serology show?", 0.01),
    _l("gallstones_us", "Ultrasound shows gallstones with a thickened gallbladder wall.", "Ultrasound shows a normal gallbladder.",
       "What did the ultrasound of the gallbladder show?", 0.05),
    _l("air_fluid_levels", "Abdominal x-ray shows dilated loops of bowel with air-fluid levels.",
       "Abdominal x-ray shows a normal bowel gas pattern.", "Did the abdominal x-ray show dilated loops of bowel?", 0.02),
    _l("glucose_high", "Blood glucose is 520 mg/dL.", "Blood glucose is normal.", "What did the lab show for blood glucose?", 0.06),
    _l("anion_gap", "Arterial blood gas shows a high anion gap metabolic acidosis.", "There is no metabolic acidosis.",
       "Did the blood gas show a high anion gap acidosis?", 0.02),
    _l("urine_ketones", "Urine ketones are strongly positive.", "Urine ketones are negative.",
       "What did the lab show for urine ketones?", 0.03),
    _l("tsh_high", "Serum TSH is elevated.", "Serum TSH is not elevated.", "What did the lab show for TSH?", 0.05),
    _l("free_t4_high", "Serum free T4 is elevated.", "Serum free T4 is not elevated.", "What did the lab show for free T4?", 0.03),
    _l("hemoglobin_low", "Hemoglobin is 8.9 g/dL.", "Hemoglobin is within normal limits.", "What did the lab show for hemoglobin?", 0.08),
    _l("mcv_low", "The mean corpuscular volume is low.", "The mean corpuscular volume is normal.",
       "What did the lab show for the mean corpuscular volume (MCV)?", 0.04),
    _l("ferritin_low", "Serum ferritin is low.", "Serum ferritin is normal.", "What did the lab show for ferritin?", 0.04),
    _l("uric_acid_high", "Serum uric acid is elevated.", "Serum uric acid is normal.", "What did the lab show for uric acid?", 0.08),
    _l("urate_crystals", "Joint fluid shows needle-shaped, negatively birefringent crystals.", "Joint fluid shows no crystals.",
       "Did the joint fluid analysis show crystals?", 0.01),
    _l("synovial_gram_positive", "Joint fluid Gram stain shows gram-positive cocci.", "Joint fluid Gram stain shows no organisms.",
       "What did the Gram stain of the joint fluid show?", 0.01),
    _l("anti_ccp", "Anti-CCP antibodies are positive.", "Anti-CCP antibodies are negative.",
       "What did the lab show for anti-CCP antibodies?", 0.02),
    _l("ana_positive", "Antinuclear antibodies are positive at a high titer.", "Antinuclear antibodies are negative.",
       "What did the lab show for antinuclear antibodies (ANA)?", 0.04),
    _l("esr_high", "ESR and CRP are elevated.", "ESR and CRP are normal.", "What did the lab show for ESR and CRP?", 0.12),
    _l("monospot", "The heterophile antibody (monospot) test is positive.", "The heterophile antibody (monospot) test is negative.",
       "What did the monospot test show?", 0.01),
    _l("atypical_lymphocytes", "The blood smear shows atypical lymphocytes.", "The blood smear shows no atypical lymphocytes.",
       "Did the blood smear show atypical lymphocytes?", 0.02),
    _l("rapid_strep", "The rapid streptococcal antigen test is positive.", "The rapid streptococcal antigen test is negative.",
       "What did the rapid strep test show?", 0.02),
    _l("pyuria", "Urinalysis shows many white cells and positive nitrites.", "Urinalysis shows no white cells or nitrites.",
       "What did the urinalysis show for white cells and nitrites?", 0.05),
    _l("hematuria", "Urinalysis shows red blood cells.", "Urinalysis shows no red blood cells.",
       "Did the urinalysis show blood in the urine?", 0.04),
    _l("ct_ureteral_stone", "Non-contrast CT shows an obstructing ureteral stone.", "Non-contrast CT shows no ureteral stone.",
       "Did the CT scan show a stone in the ureter?", 0.01),
    _l("hcg_positive", "The urine pregnancy test is positive.", "The urine pregnancy test is negative.",
       "What did the pregnancy test show?", 0.05, "female"),
    _l("empty_uterus", "Transvaginal ultrasound shows an empty uterus.", "Transvaginal ultrasound shows no abnormality of the uterus.",
       "What did the pelvic ultrasound show in the uterus?", 0.02, "female"),
    _l("absent_ovarian_flow", "Doppler ultrasound shows absent blood flow to the right ovary.",
       "Doppler ultrasound shows normal blood flow to both ovaries.",
       "What did the Doppler ultrasound show for blood flow to the ovary?", 0.01, "female"),
    _l("csf_neutrophils", "Cerebrospinal fluid shows many neutrophils and a low glucose.",
       "Cerebrospinal fluid white cell count and glucose are normal.", "What did the spinal fluid show for white cells?", 0.01),
    _l("xanthochromia", "Cerebrospinal fluid is xanthochromic.", "Cerebrospinal fluid is clear and colorless.",
       "Was the spinal fluid yellow-tinged (xanthochromic)?", 0.01),
    _l("csf_protein_high", "Cerebrospinal fluid protein is elevated with a normal cell count.",
       "Cerebrospinal fluid protein is normal.", "What did the spinal fluid show for protein?", 0.02),
    _l("ct_head_blood", "Non-contrast head CT shows blood in the subarachnoid space.", "Non-contrast head CT shows no bleeding.",
       "Did the head CT show any bleeding?", 0.01),
    _l("mri_infarct", "Brain MRI shows an acute infarct.", "Brain MRI shows no acute infarct.", "What did the brain MRI show?", 0.01),
    _l("hypercalcemia", "Serum calcium is elevated.", "Serum calcium is normal.", "What did the lab show for serum calcium?", 0.03),
    _l("afb_smear", "Sputum acid-fast bacilli smear is positive.", "Sputum acid-fast bacilli smear is negative.",
       "What did the sputum acid-fast stain show?", 0.01),
)

# age multipliers are (young, middle, old); sex multipliers are (female, male)
_FLAT, _YOUNG, _OLDER, _OLD = (1.0, 1.0, 1.0), (1.6, 0.9, 0.4), (0.4, 1.1, 1.4), (0.2, 0.9, 1.8)
_BOTH, _FEM, _MALE, _FONLY = (1.0, 1.0), (1.4, 0.6), (0.6, 1.4), (2.0, 0.0)

DISEASES: tuple[DiseaseSpec, ...] = (
    # ---- cardiology ----
    DiseaseSpec("acute_mi", "Acute myocardial infarction", "cardiology", 1.0, _OLDER, _MALE, _p(
        chest_pain=0.95, radiating_arm_pain=0.75, diaphoresis=0.7, dyspnea=0.45, nausea=0.4, troponin_high=0.95,
        st_elevation=0.75, hypertension_history=0.6, smoker=0.5, diabetes_history=0.3, prior_mi=0.25,
        tachycardia=0.4, hypotension=0.12, s3_gallop=0.1, exertional_pain=0.15, d_dimer_high=0.2, similar_episodes=0.2)),
    DiseaseSpec("stable_angina", "Stable angina pectoris", "cardiology", 1.0, _OLDER, _MALE, _p(
        chest_pain=0.95, exertional_pain=0.92, radiating_arm_pain=0.5, diaphoresis=0.15, dyspnea=0.3,
        troponin_high=0.02, st_elevation=0.03, hypertension_history=0.6, smoker=0.5, similar_episodes=0.85,
        prior_mi=0.15, diabetes_history=0.25)),
    DiseaseSpec("pericarditis", "Acute pericarditis", "cardiology", 0.9, _YOUNG, _MALE, _p(
        chest_pain=0.95, pleuritic_pain=0.85, positional_relief=0.85, friction_rub=0.6, diffuse_st_pr=0.8,
        recent_uri=0.6, fever=0.4, troponin_high=0.2, esr_high=0.8, st_elevation=0.1, tachycardia=0.3)),
    DiseaseSpec("aortic_dissection", "Aortic dissection", "cardiology", 0.7, _OLD, _MALE, _p(
        chest_pain=0.9, tearing_back_pain=0.85, arm_bp_difference=0.6, wide_mediastinum=0.75,
        hypertension_history=0.85, diastolic_murmur=0.35, syncope=0.15, hypotension=0.2, troponin_high=0.1,
        d_dimer_high=0.9, diaphoresis=0.5)),
    DiseaseSpec("heart_failure", "Congestive heart failure", "cardiology", 1.0, _OLD, _BOTH, _p(
        dyspnea=0.95, orthopnea=0.85, pnd=0.7, leg_edema=0.8, jvd=0.75, crackles=0.75, s3_gallop=0.5, bnp_high=0.95,
        fatigue=0.6, prior_mi=0.4, hypertension_history=0.6, weight_gain=0.5, cough=0.3, hypoxia=0.4)),
    DiseaseSpec("atrial_fibrillation", "Atrial fibrillation", "cardiology", 1.0, _OLD, _BOTH, _p(
        palpitations=0.9, irregular_pulse=0.95, ecg_afib=0.95, dyspnea=0.45, syncope=0.1, fatigue=0.4,
        hypertension_history=0.6, tachycardia=0.8, heavy_alcohol=0.2, chest_pain=0.15, similar_episodes=0.4)),
    # ---- pulmonology ----
    DiseaseSpec("pneumonia", "Community-acquired pneumonia", "pulmonology", 1.0, _FLAT, _BOTH, _p(
        cough=0.95, fever=0.9, productive_sputum=0.8, chills=0.7, dyspnea=0.6, pleuritic_pain=0.4, crackles=0.7,
        consolidation=0.6, cxr_infiltrate=0.92, leukocytosis=0.8, tachycardia=0.5, hypoxia=0.4, chest_pain=0.3)),
    DiseaseSpec("asthma", "Asthma exacerbation", "pulmonology", 1.0, _YOUNG, _BOTH, _p(
        dyspnea=0.95, wheezes=0.9, cough=0.6, asthma_history=0.85, similar_episodes=0.8, peak_flow_low=0.9,
        recent_uri=0.4, hypoxia=0.2, chest_pain=0.15, smoker=0.1, fever=0.05)),
    DiseaseSpec("copd_exacerbation", "COPD exacerbation", "pulmonology", 1.0, _OLD, _BOTH, _p(
        dyspnea=0.95, smoker=0.95, cough=0.85, productive_sputum=0.7, wheezes=0.7, hypercapnia=0.7, hypoxia=0.7,
        peak_flow_low=0.7, similar_episodes=0.7, asthma_history=0.05, fever=0.2, clubbing=0.05)),
    DiseaseSpec("pulmonary_embolism", "Pulmonary embolism", "pulmonology", 1.0, _FLAT, _BOTH, _p(
        dyspnea=0.9, pleuritic_pain=0.6, chest_pain=0.55, tachycardia=0.75, hypoxia=0.65, calf_swelling=0.45,
        recent_travel=0.5, recent_surgery=0.3, oral_contraceptives=0.45, d_dimer_high=0.97, hemoptysis=0.15,
        syncope=0.1, crackles=0.05, cxr_infiltrate=0.05)),
    DiseaseSpec("pneumothorax", "Spontaneous pneumothorax", "pulmonology", 0.8, _YOUNG, _MALE, _p(
        dyspnea=0.9, chest_pain=0.85, pleuritic_pain=0.7, absent_breath_sounds=0.9, smoker=0.6, tachycardia=0.5,
        hypoxia=0.3, similar_episodes=0.2)),
    DiseaseSpec("tuberculosis", "Pulmonary tuberculosis", "pulmonology", 0.8, _FLAT, _MALE, _p(
        cough=0.9, hemoptysis=0.4, weight_loss=0.8, night_sweats=0.8, fever=0.7, tb_exposure=0.8, cxr_cavity=0.75,
        afb_smear=0.7, fatigue=0.6, productive_sputum=0.4)),
    DiseaseSpec("lung_cancer", "Lung cancer", "pulmonology", 0.8, _OLD, _MALE, _p(
        cough=0.7, weight_loss=0.8, hemoptysis=0.4, smoker=0.92, cxr_mass=0.85, clubbing=0.3, hypercalcemia=0.25,
        fatigue=0.6, dyspnea=0.4, night_sweats=0.15)),
    # ---- gastroenterology ----
    DiseaseSpec("acute_pancreatitis", "Acute pancreatitis", "gastroenterology", 1.0, _FLAT, _BOTH, _p(
        abdominal_pain=0.95, epigastric_back_pain=0.85, vomiting=0.8, nausea=0.85, heavy_alcohol=0.6,
        gallstone_history=0.35, lipase_high=0.95, leukocytosis=0.6, epigastric_tenderness=0.85, tachycardia=0.5,
        fever=0.3, hypotension=0.15, glucose_high=0.2)),
    DiseaseSpec("acute_cholecystitis", "Acute cholecystitis", "gastroenterology", 1.0, _FLAT, _FEM, _p(
        abdominal_pain=0.95, ruq_fatty_meal=0.85, murphy_sign=0.8, fever=0.6, nausea=0.7, vomiting=0.5,
        gallstones_us=0.92, gallstone_history=0.5, leukocytosis=0.7, jaundice=0.1, lipase_high=0.05)),
    DiseaseSpec("appendicitis", "Acute appendicitis", "gastroenterology", 1.0, _YOUNG, _BOTH, _p(
        abdominal_pain=0.95, pain_migration=0.8, mcburney_tenderness=0.85, fever=0.6, nausea=0.7, vomiting=0.5,
        leukocytosis=0.8, diarrhea=0.1)),
    DiseaseSpec("peptic_ulcer", "Peptic ulcer disease", "gastroenterology", 1.0, _FLAT, _BOTH, _p(
        abdominal_pain=0.9, burning_relieved_meals=0.75, nsaid_use=0.55, melena=0.3, epigastric_tenderness=0.5,
        similar_episodes=0.5, hemoglobin_low=0.2, nausea=0.3, smoker=0.4, heartburn=0.2)),
    DiseaseSpec("gerd", "Gastroesophageal reflux disease", "gastroenterology", 1.0, _FLAT, _BOTH, _p(
        heartburn=0.95, chest_pain=0.5, abdominal_pain=0.3, cough=0.3, similar_episodes=0.75, nausea=0.1,
        troponin_high=0.01)),
    DiseaseSpec("hepatitis_a", "Acute hepatitis A", "gastroenterology", 0.8, _YOUNG, _BOTH, _p(
        fatigue=0.8, nausea=0.8, jaundice=0.75, dark_urine=0.8, alt_high=0.95, travel_abroad=0.6,
        hepatitis_a_igm=0.92, fever=0.5, abdominal_pain=0.55, vomiting=0.4)),
    DiseaseSpec("bowel_obstruction", "Small bowel obstruction", "gastroenterology", 0.9, _OLDER, _BOTH, _p(
        abdominal_pain=0.95, vomiting=0.9, obstipation=0.85, distension=0.85, air_fluid_levels=0.92,
        prior_abdominal_surgery=0.75, nausea=0.8, tachycardia=0.4)),
    DiseaseSpec("diverticulitis", "Acute diverticulitis", "gastroenterology", 0.9, _OLD, _BOTH, _p(
        abdominal_pain=0.95, llq_pain=0.85, llq_tenderness=0.85, fever=0.6, leukocytosis=0.7, constipation=0.4,
        nausea=0.4, diarrhea=0.2)),
    DiseaseSpec("gastroenteritis", "Acute gastroenteritis", "gastroenterology", 1.0, _FLAT, _BOTH, _p(
        diarrhea=0.95, vomiting=0.7, nausea=0.8, abdominal_pain=0.6, fever=0.4, sick_contacts=0.5,
        suspect_food=0.6, dry_mucosa=0.5, leukocytosis=0.2)),
    # ---- neurology ----
    DiseaseSpec("migraine", "Migraine", "neurology", 1.0, _YOUNG, _FEM, _p(
        headache=0.98, unilateral_throbbing=0.85, photophobia=0.85, nausea=0.7, aura=0.3, family_migraine=0.6,
        similar_episodes=0.85, vomiting=0.3)),
    DiseaseSpec("tension_headache", "Tension-type headache", "neurology", 1.0, _FLAT, _BOTH, _p(
        headache=0.98, band_headache=0.85, photophobia=0.08, nausea=0.04, similar_episodes=0.8)),
    DiseaseSpec("subarachnoid_hemorrhage", "Subarachnoid hemorrhage", "neurology", 0.8, _OLDER, _FEM, _p(
        headache=0.95, thunderclap=0.9, nuchal_rigidity=0.6, vomiting=0.6, ct_head_blood=0.9, xanthochromia=0.7,
        syncope=0.3, confusion=0.3, photophobia=0.4, hypertension_history=0.5)),
    DiseaseSpec("bacterial_meningitis", "Bacterial meningitis", "neurology", 0.8, _YOUNG, _BOTH, _p(
        headache=0.9, fever=0.9, nuchal_rigidity=0.85, photophobia=0.7, confusion=0.5, csf_neutrophils=0.92,
        petechial_rash=0.2, vomiting=0.5, leukocytosis=0.8)),
    DiseaseSpec("ischemic_stroke", "Ischemic stroke", "neurology", 1.0, _OLD, _BOTH, _p(
        hemiparesis=0.9, facial_droop=0.8, slurred_speech=0.7, mri_infarct=0.92, hypertension_history=0.8,
        irregular_pulse=0.25, diabetes_history=0.35, smoker=0.4, confusion=0.2, headache=0.15)),
    DiseaseSpec("guillain_barre", "Guillain-Barré syndrome", "neurology", 0.7, _FLAT, _BOTH, _p(
        ascending_weakness=0.95, areflexia=0.9, tingling=0.7, recent_uri=0.3, diarrhea=0.35, csf_protein_high=0.85,
        dyspnea=0.2, hemiparesis=0.03)),
    # ---- endocrinology ----
    DiseaseSpec("dka", "Diabetic ketoacidosis", "endocrinology", 0.9, _YOUNG, _BOTH, _p(
        polydipsia=0.9, vomiting=0.7, abdominal_pain=0.55, diabetes_history=0.8, glucose_high=0.98, anion_gap=0.95,
        urine_ketones=0.95, kussmaul=0.7, dry_mucosa=0.8, confusion=0.3, tachycardia=0.7, nausea=0.7, fatigue=0.5,
        urinary_frequency=0.6)),
    DiseaseSpec("hypothyroidism", "Hypothyroidism", "endocrinology", 1.0, _OLDER, _FEM, _p(
        fatigue=0.9, cold_intolerance=0.8, weight_gain=0.75, constipation=0.6, dry_skin=0.7, tsh_high=0.97,
        goiter=0.3, heavy_menses=0.3, hemoglobin_low=0.15, free_t4_high=0.01)),
    DiseaseSpec("hyperthyroidism", "Graves disease (hyperthyroidism)", "endocrinology", 1.0, _YOUNG, _FEM, _p(
        palpitations=0.8, heat_intolerance=0.85, weight_loss=0.8, tremor=0.75, free_t4_high=0.95, tsh_high=0.01,
        goiter=0.7, exophthalmos=0.4, tachycardia=0.8, diarrhea=0.3, irregular_pulse=0.1, fatigue=0.4)),
    # ---- nephrology / urology ----
    DiseaseSpec("pyelonephritis", "Acute pyelonephritis", "nephrology", 1.0, _FLAT, _FEM, _p(
        fever=0.9, flank_pain=0.85, cva_tenderness=0.85, dysuria=0.6, urinary_frequency=0.5, chills=0.6,
        pyuria=0.95, nausea=0.5, vomiting=0.4, leukocytosis=0.8)),
    DiseaseSpec("nephrolithiasis", "Nephrolithiasis (kidney stone)", "nephrology", 1.0, _FLAT, _MALE, _p(
        flank_pain=0.95, colicky_groin_pain=0.85, hematuria=0.85, ct_ureteral_stone=0.92, prior_stones=0.4,
        nausea=0.6, vomiting=0.4, fever=0.05, cva_tenderness=0.3)),
    DiseaseSpec("cystitis", "Acute cystitis", "nephrology", 1.0, _FLAT, (1.9, 0.1), _p(
        dysuria=0.95, urinary_frequency=0.85, pyuria=0.9, hematuria=0.3, fever=0.05, flank_pain=0.05,
        new_partner=0.3)),
    # ---- hematology / rheumatology / infectious disease ----
    DiseaseSpec("iron_deficiency_anemia", "Iron deficiency anemia", "hematology", 1.0, _FLAT, _FEM, _p(
        fatigue=0.95, pallor=0.8, hemoglobin_low=0.95, mcv_low=0.9, ferritin_low=0.95, pica=0.3, koilonychia=0.2,
        heavy_menses=0.5, dyspnea=0.35, palpitations=0.25, melena=0.1)),
    DiseaseSpec("gout", "Acute gout", "rheumatology", 1.0, _OLDER, (0.3, 1.7), _p(
        joint_pain=0.98, big_toe_swelling=0.7, hot_swollen_joint=0.9, sudden_joint_onset=0.85, heavy_alcohol=0.5,
        diuretic_use=0.4, uric_acid_high=0.7, urate_crystals=0.85, similar_episodes=0.6, fever=0.1)),
    DiseaseSpec("rheumatoid_arthritis", "Rheumatoid arthritis", "rheumatology", 1.0, _OLDER, (1.5, 0.5), _p(
        joint_pain=0.95, morning_stiffness=0.9, symmetric_hand_swelling=0.85, anti_ccp=0.75, esr_high=0.8,
        fatigue=0.6, hemoglobin_low=0.25)),
    DiseaseSpec("sle", "Systemic lupus erythematosus", "rheumatology", 0.8, _YOUNG, (1.8, 0.2), _p(
        joint_pain=0.85, malar_rash=0.6, photosensitivity=0.6, oral_ulcers=0.45, ana_positive=0.98, fatigue=0.8,
        fever=0.4, hemoglobin_low=0.35, symmetric_hand_swelling=0.3, esr_high=0.6)),
    DiseaseSpec("septic_arthritis", "Septic arthritis", "infectious disease", 0.8, _FLAT, _BOTH, _p(
        joint_pain=0.98, hot_swollen_joint=0.95, fever=0.8, synovial_gram_positive=0.85, iv_drug_use=0.3,
        leukocytosis=0.7, esr_high=0.9, sudden_joint_onset=0.5)),
    DiseaseSpec("mononucleosis", "Infectious mononucleosis", "infectious disease", 0.9, (2.0, 0.4, 0.1), _BOTH, _p(
        sore_throat=0.95, fever=0.85, fatigue=0.85, posterior_nodes=0.85, tonsillar_exudate=0.6, splenomegaly=0.5,
        monospot=0.85, atypical_lymphocytes=0.75, alt_high=0.3)),
    DiseaseSpec("strep_pharyngitis", "Streptococcal pharyngitis", "infectious disease", 1.0, _YOUNG, _BOTH, _p(
        sore_throat=0.98, fever=0.8, tonsillar_exudate=0.8, posterior_nodes=0.2, cough=0.08, rapid_strep=0.9,
        sick_contacts=0.3, fatigue=0.3)),
    # ---- gynecology ----
    DiseaseSpec("ectopic_pregnancy", "Ectopic pregnancy", "gynecology", 0.9, (1.8, 0.5, 0.0), _FONLY, _p(
        pelvic_pain=0.9, abdominal_pain=0.6, missed_period=0.85, vaginal_bleeding=0.7, hcg_positive=0.99,
        empty_uterus=0.85, adnexal_mass=0.5, hypotension=0.2, syncope=0.15, oral_contraceptives=0.02)),
    DiseaseSpec("ovarian_torsion", "Ovarian torsion", "gynecology", 0.8, (1.8, 0.6, 0.2), _FONLY, _p(
        pelvic_pain=0.95, abdominal_pain=0.5, vomiting=0.7, nausea=0.8, adnexal_mass=0.8, absent_ovarian_flow=0.85,
        hcg_positive=0.05, missed_period=0.05)),
    DiseaseSpec("pid", "Pelvic inflammatory disease", "gynecology", 0.9, (1.8, 0.6, 0.1), _FONLY, _p(
        pelvic_pain=0.9, abdominal_pain=0.5, fever=0.6, vaginal_discharge=0.75, cervical_motion_tenderness=0.9,
        new_partner=0.75, dysuria=0.2, leukocytosis=0.6, hcg_positive=0.03)),
)
