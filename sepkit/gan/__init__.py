"""A class-conditional spectrogram GAN: the second experiment type (``python train.py experiment=gan``).

    audio (any track source's stems, or root/<category>/*.wav) ─▶ 16 kHz mono ─▶ log-mel (LogMel)
    noise ⊕ one-hot category ─▶ Generator ─▶ log-mel ─▶ Discriminator(label) ─▶ logit
    log-mel ─▶ LogMelInverse (mel → linear → Griffin-Lim) ─▶ audio

Scores (one place, :mod:`sepkit.gan.scores`): conditional accuracy of a small classifier trained on
real training spectrograms, Fréchet distance in its embedding space, pairwise diversity.
"""
