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
- Respiratory insufficiency (patients): shorter breath groups and phonations, audible
  inhalations, hesitation pauses, slower speech, more breathiness, jitter and shimmer,
  softer glottal closure, wider formant bandwidths, loudness decaying within a breath
  group and a flatter dynamic profile. Severity is drawn from Beta(`severity_alpha`,
  `severity_beta`) and scaled by `marker_strength`, so mild patients are common; every
  marker adds its shift to the speaker's own healthy value, which varies across speakers
  (sex, age, habitual pitch, speaking rate) more than a typical patient's shift.
- Recording sites (`n_sites`): each a room (early reflections) and a channel (band
  limit, low-end roll-off, noise floor, usual sample rate). Patients favour the first
  sites and controls the last, by `site_confound`; the site is the metadata's `site`.
- Hospital wards: monitor beeps, ventilation air flow with mains hum and distant
  low-passed babble. A speaker recorded in a ward (`ward_background_patients`,
  `ward_background_controls`: most patients, some controls) carries one of `n_wards`
  wards' noise behind the speech; the others a home's room tone, at levels
  (`ward_peak_range`, `home_peak_range`) that overlap. That is SPIRA's confound, with
  overlapping levels. The noise set's training files are realisations of those wards;
  its val and test files (`held_out_noise_files` each, listed with their `split` in
  noise_data.csv) come from one more ward each, heard in no recording and no training noise.

Output is byte-deterministic for a given config. Random streams are keyed by
(seed, purpose, speaker, utterance), so adding speakers leaves existing voices unchanged.

Modules, each importing only those listed before it: `voice` (traits, glottal source,
vocal tract), `utterance` (what is said when, intonation), `noise` (wards, home, room)
and `cohort` (speakers, files, layout; it keys every random stream).
"""

from spira.demo.cohort import DemoCohortConfig, generate_demo_cohort

__all__ = ["DemoCohortConfig", "generate_demo_cohort"]
