"""Learned routing offline: featuriser, quality model, training, evaluation, refit.

Pure numpy/scipy over ``schemas`` models: no files, no Kafka, no clock. The
strategy that uses a trained model live is ``processors.strategies.learned``.
"""
