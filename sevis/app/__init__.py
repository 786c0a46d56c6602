"""The Streamlit app's widgets, one module per view (app.py keeps page set-up, the sidebar and the tab
dispatch). Every computation lives in sevis (sevis/views/<view>.py, the shared layers below it, export); these
modules only lay out widgets and call it. Each view module has `render(ctx: Context) -> list[Panel]` returning
the panels it showed.
"""
