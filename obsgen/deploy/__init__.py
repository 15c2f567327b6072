"""The live side: everything that reads or changes running backends.

    http, wire  the HTTP client every live command shares (deadlines, retries, bounded answers) and what
                goes on the wire (proxies, no ambient credentials)
    access      credentials, and the only hosts and directories secrets may go to or come from
    backends/   one small client per backend behind one interface (Grafana, Prometheus rule files,
                Mimir ruler, Alertmanager config file, Mimir Alertmanager)
    normalise   the normal forms both sides are compared in
    plan        the one pure plan/diff of desired against live objects
    report      a plan as text, markdown or JSON
    session     diff and apply: read, plan, apply in order, roll back on any failure
    doctor      every backend of an environment checked at once, one line per check with the fix
    state       the per-environment lock and where the ledger lives
    ledger      the local record of every apply, dry run, refusal and failure

Nothing under obsgen/compile or obsgen/output imports from here.
"""
