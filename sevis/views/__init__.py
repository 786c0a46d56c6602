"""One module per view of the app (and of `sevis export`): model + inputs in, Panels (figure + data + caption)
out, and the view's computed takeaway. No Streamlit here, so every view is testable and scriptable.

A view imports only the layers below it (reference, images, shared_figures, plots, analysis, recorder, zoo),
never another view; sevis.views.registry sits above them all; sevis/app/<view>.py holds each view's widgets.
"""
