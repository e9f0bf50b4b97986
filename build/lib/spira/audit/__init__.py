"""Checks on the prepared data before any training: can the label be told from nuisance properties alone?"""
