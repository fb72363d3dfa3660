"""The access review (``keystate report``, DESIGN §13): every live key of the selected
accounts, who manages it, what it may do, where, since when and until when.

* :mod:`.model` — one typed row per live key (:func:`.model.build`), and the summary;
* :mod:`.gates` — the ``--fail-on`` policy rules;
* :mod:`.read` — reads the accounts (one list request each, no more than a plan);
* :mod:`.render_json`, :mod:`.render_csv`, :mod:`.render_markdown`,
  :mod:`.render_html` — ``render(report, gates) -> str``, pure functions of the report.
"""
