"""Seeded generator of a synthetic SPIRA-layout cohort (no real voices, no downloads).

Every recording written here is synthetic speech-like sound made with numpy/scipy. It
exists so the pipeline can be built, tested and demonstrated without SPIRA's private
data. What is modelled:

- Voice source: Rosenberg glottal pulses at a per-speaker F0 (by sex and age) with slow
  drift, phrase declination and accents, cycle-to-cycle jitter (period) and shimmer
  (amplitude), plus pitch-synchronous aspiration noise (breathiness).
- Vocal tract: a cascade of formant resonators per vowel target (a, e, i, o, u and a
  nasal murmur; F1-F4 scaled per speaker for vocal-tract length by sex and age, plus a
  fixed broad F5), cross-faded from syllable to syllable; fricative and plosive noise
  bursts for consonants.
- Utterances: a sustained vowel "aaa", the SPIRA sentence ("o amor ao próximo ...") and
  counting ("um, dois, três ..."), with syllable-rate prosody, breath groups, pauses and
  inhalations, then a mild room colouring per channel.
- Respiratory insufficiency (patients, scaled by `marker_strength`): shorter breath
  groups and phonations, audible inhalations, hesitation pauses, slower speech, more
  breathiness, jitter and shimmer, softer glottal closure, wider formant bandwidths,
  loudness decaying within a breath group and a flatter dynamic profile. Patients are
  at least moderately affected (severity 0.6-1 before `marker_strength`), so ~80
  training speakers teach the markers in a few epochs; speakers still vary individually.
- Hospital wards: monitor beeps, ventilation air flow with mains hum and distant
  low-passed babble. The same generator writes the noise set and (with
  `ward_noise_in_patients`) the background of patient recordings, while controls get
  the quieter, broadband room tone of a phone at home. That reproduces SPIRA's
  confound: the background alone separates the classes.

Output is byte-deterministic for a given config. Random streams are keyed by
(seed, purpose, speaker, utterance), so adding speakers leaves existing voices unchanged.

Modules, each importing only those listed before it: `voice` (traits, glottal source,
vocal tract), `utterance` (what is said when, intonation), `noise` (wards, home, room)
and `cohort` (speakers, files, layout; it keys every random stream).
"""

from spira.demo.cohort import DemoCohortConfig, generate_demo_cohort

__all__ = ["DemoCohortConfig", "generate_demo_cohort"]
