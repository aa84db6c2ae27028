"""Teachers and their stored outputs (label stores).

``label`` (the command's orchestration), ``teacher`` (--teacher specs, description, outputs), ``layers``
(which [CLS] layers PKD uses), ``layout`` (a store on disk), ``writer`` (writes stores), ``store`` (reads them).
"""
