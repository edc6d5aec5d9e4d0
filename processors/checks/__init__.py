"""Deterministic checks of a model's answer text: pure functions, no model calls, no I/O.

``arithmetic`` re-computes the equations an answer shows (``8 / 3 = 2.67``) and says which do
not compute; ``answer_features`` turns an answer and its prompt into generic numbers a learned
verifier can score. Both are cheap enough to run on live answers in a provider worker.
"""
