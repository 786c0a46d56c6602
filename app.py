"""sevis app: `streamlit run app.py`. The page lives in sevis/app/main.py (so an installed sevis serves it too,
with `sevis app`); Streamlit reruns this script, which calls main() on every run."""
from sevis.app.main import main

main()
