"""The page `sevis app` serves from an installed sevis (the checkout's twin is app.py at the root).

Streamlit reruns this file on every interaction, so it only calls main(); the app's Streamlit config is read from
.streamlit/config.toml beside this file. Importing it outside `streamlit run` draws nothing useful: it is a script.
"""
from sevis.app.main import main

main()
