"""Domain models, wire codec, config models and exact arithmetic shared by every component.

`core` imports no other component: it is the vocabulary they share.
"""
