"""The app. Its packages are its architecture, lowest first; a module imports its own package and
those below it, never one above (tests/test_structure.py checks it, imports inside functions too):

clip (the model, no Django) < models, queue < files < index < search < services (every write)
< library < pipeline < jobs (RQ job bodies) < web, admin, management commands, templatetags.
"""
